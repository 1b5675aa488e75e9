//! `[stories]` settings: how far back a reprint is looked for, and how similar
//! it must be.

use std::time::Duration;

/// Articles more than this far apart (by published, else first-seen time) are
/// never the same story: a wire story is reprinted within hours to a couple of
/// days, and a longer window only adds candidates to verify.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(72 * 3600);

/// The estimated body containment at or above which two articles are the same
/// story. In the corpus evaluation (docs/performance.md, "Stories") 99% of
/// reprints with a body score 0.79 or more against their original (lowest
/// 0.68), and 99% of pairs of different articles sharing names 0.28 or less
/// (highest 0.33); 0.5 lies midway, with room for the estimate's noise (about
/// ±0.09 at two standard errors). Precision falls below 0.5, recall above 0.7.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Validated story settings. A change applies to articles clustered after it;
/// existing assignments stay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StorySettings {
    /// How far apart two articles of one story may be.
    pub window: Duration,
    /// Minimum estimated containment of the smaller body's shingles in the
    /// larger's, in (0, 1]. Lower merges looser rewrites and risks merging
    /// articles that share a paragraph; higher splits reprints that drop or add
    /// more text.
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StorySettingsError {
    #[error("stories.threshold must be in (0, 1], got {0}")]
    ThresholdOutOfRange(f64),
    #[error("stories.window must be longer than zero")]
    EmptyWindow,
    #[error("stories.window is too long: {0:?}")]
    WindowTooLong(Duration),
}

impl Default for StorySettings {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl StorySettings {
    pub fn new(window: Duration, threshold: f64) -> Result<Self, StorySettingsError> {
        let settings = Self { window, threshold };
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), StorySettingsError> {
        // `!(x > 0)` also rejects NaN.
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(StorySettingsError::ThresholdOutOfRange(self.threshold));
        }
        if self.window.is_zero() {
            return Err(StorySettingsError::EmptyWindow);
        }
        if chrono::TimeDelta::from_std(self.window).is_err() {
            return Err(StorySettingsError::WindowTooLong(self.window));
        }
        Ok(())
    }

    pub fn window_delta(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.window).unwrap_or(chrono::TimeDelta::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(StorySettings::default().validate(), Ok(()));
    }

    #[test]
    fn threshold_must_be_in_the_unit_interval() {
        for bad in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(StorySettings::new(DEFAULT_WINDOW, bad).is_err(), "{bad}");
        }
        assert!(StorySettings::new(DEFAULT_WINDOW, 1.0).is_ok());
    }

    #[test]
    fn window_must_be_positive_and_representable() {
        assert_eq!(
            StorySettings::new(Duration::ZERO, 0.5),
            Err(StorySettingsError::EmptyWindow)
        );
        assert!(StorySettings::new(Duration::MAX, 0.5).is_err());
    }
}

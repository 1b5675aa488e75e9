-- Rules whose hits on a story were held back (back catalogue, too old), as a
-- JSON array of rule names: such a hit is recorded here instead of as an
-- alerts row with `suppressed` set, one write per story instead of one row
-- per hit (an article can match hundreds of rules). A rule held back on a
-- story counts as fired on it: a later reprint does not alert for it.
ALTER TABLE stories ADD COLUMN held_rules TEXT;

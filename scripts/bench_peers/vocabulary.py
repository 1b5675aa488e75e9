"""A fixed English news vocabulary for generated prose, most frequent first.

Function words come first so that a Zipf distribution over the ranks gives
them the share of running text they have in real news; the content words
after them are inflected by simple rules (plurals, -ed, -ing) to reach a few
thousand distinct words, as many as a month of one outlet's articles use.
"""

FUNCTION_WORDS = """
the of to and a in that for is on said with was as by at from it he his be
has have are were an not but its will who they this after their or had been
also more would which about than over one two new up out into its she her we
our them when there all some other last year could can time first people
against because while where before those during three since million most
says many should under may percent between just only now told such both back
""".split()

# Verbs with regular inflection: each adds its -s, -ed and -ing forms.
REGULAR_VERBS = """
accuse add admit agree aim allow announce appeal appear approve argue arrest
ask attack attempt avoid back ban believe block boost call campaign cancel
charge claim close collapse comment complain confirm consider continue
contribute convict cover crash create criticise damage debate decide declare
decline defend delay deliver demand deny deploy describe design destroy
detain determine develop die disclose discover dismiss dispute doubt
downgrade drop ease elect emerge end ensure establish evacuate examine
exceed expand expect explain export express extend face fail fear file
finance finish force form found gain govern grant guarantee handle happen
help hire host ignore impose improve include increase indicate inform injure
insist intend introduce invade invest investigate invite involve issue join
jump kill launch lift limit list live locate look manage march mark measure
mention merge monitor move murder name need negotiate note notice observe
offer open oppose order organise outline own pass pause perform permit plan
play plunge point pose post praise predict prepare present press prevent
proceed process produce promise propose protect protest provide publish pull
push question raise reach receive recall record recover reduce reform refuse
register reject release rely remain remove repair replace report represent
request require rescue resign resist resolve respond rest restore restrict
resume retain return reveal review rise rule sanction scrap search secure
seize serve settle share shift sign slow spark start state stay strengthen
struggle suffer suggest supply support surge survive suspend target test
threaten track trade train transfer travel treat triple turn urge use vote
wait walk want warn wonder work worry
""".split()

# Irregular verbs, listed with their forms.
IRREGULAR_VERBS = """
become became becoming becomes begin began begun beginning begins bring
brought bringing brings build built building builds buy bought buying buys
choose chose chosen choosing come came coming comes cut cutting cuts do did
done doing does draw drew drawn drive drove driven driving fall fell fallen
falling falls feel felt feeling fight fought fighting fights find found
finding finds fly flew flown flying give gave given giving gives go went gone
going goes grow grew grown growing grows hit hitting hits hold held holding
holds keep kept keeping keeps know knew known leave left leaving leaves lead
led leading leads lose lost losing loses make made making makes meet met
meeting meets pay paid paying pays put putting puts run ran running runs see
saw seen seeing sees sell sold selling sells send sent sending sends set
setting sets shoot shot shooting show showed shown showing shows speak spoke
spoken speaking speaks spend spent spending spends stand stood standing
stands strike struck striking take took taken taking takes tell telling tells
think thought thinking understand understood win won winning wins write
wrote written writing
""".split()

# Nouns with a regular plural.
NOUNS = """
accord account accusation action activist administration adviser agency
agenda agreement aid aircraft airline airport alliance allegation ally
ambassador amendment analyst anniversary appeal army arrest artist asset
assault attack attorney audience authority award bank bankruptcy barrel base
battle bid bill billion board bomb bond border boss brand bridge budget
bureau campaign candidate capital captain car cargo case casualty ceasefire
centre ceremony chairman challenge champion chancellor channel charity chief
child church citizen city civilian claim client climate coalition coast
commander commission committee community company competition complaint
concern conference conflict congress consumer contract convoy corporation
council count country court crackdown crime crisis critic crop crowd cuts
customer cyclone data deadline deal death debt decade decision defence
deficit delegate delegation demand democracy demonstrator department deputy
detainee developer diplomat director disaster dispute district doctor dollar
donor drone drought economist economy editor effort election electricity
embassy emergency emission employee energy engineer envoy epidemic estimate
euro evacuation evidence executive exercise expert explosion export factory
family farmer fee festival figure film fine fire firm flight flood force
forecast forest fuel fund funeral gallery game gas general goal government
governor grain group growth guard guideline harvest headquarters health
hearing heatwave hospital hostage household housing hurricane immigrant
import incident income industry inflation inquiry institution insurance
interest interview investigation investment investor island journalist
judge jury labour landslide lawmaker lawsuit lawyer leader leadership league
lender licence loan lockdown loss majority manager mandate manufacturer
market mayor measure media meeting member merger migrant militant military
minister ministry minority mission missile model moment month motion
movement nation negotiator network newspaper night nominee nurse observer
occupation offensive office officer official oil operation opponent
opposition order organisation outbreak output owner pandemic parliament
partner party passenger patient payment peace pension percentage period
permit petition physician pilot pipeline plan platform player police policy
politician poll port position poverty power premier president price prison
prisoner problem producer product profit programme project prosecutor
protest protester province provision publisher quarter rally rate reactor
rebel recession record referendum reform refugee region regulator relief
report reporter republic researcher reserve resident resolution resource
restriction result revenue right riot risk road rocket round ruling rumour
safety sale sanction satellite scandal scheme school scientist season seat
sector security senator sentence series service session settlement share
shareholder ship shortage shortfall site situation skill soldier source
speaker spokesman spokeswoman sponsor stadium stake statement station
status strike student study subsidy suburb suit summit supplier supporter
surge survey suspect system talk target tariff tax teacher team technology
term territory terrorist test threat ticket title total tourist town trader
tradition trial tribunal troop truce union university unrest value vehicle
verdict veteran victim village violation visit visitor volunteer voter
wage war warning warship watchdog wave weapon week weekend winner witness
worker workforce year youth
""".split()

# Nouns used as they are (mass nouns, plural-only, abstract).
MASS_NOUNS = """
access advice aviation agriculture anger chaos coverage custody damage
diplomacy education employment enforcement equipment evidence finance
footage funding furniture gold healthcare immigration infrastructure
intelligence justice knowledge legislation manufacturing momentum news
oversight parliament police pressure property research retail shipping
software steel sovereignty support surveillance testimony tourism trade
traffic transport turmoil unemployment violence weather welfare
""".split()

ADJECTIVES = """
able active acute additional afraid agricultural alleged annual armed
available aware bad big bitter brief broad busy central certain cheap civil
clear close coastal cold commercial common complex concerned conservative
constitutional criminal critical crucial current dangerous deadly deep
democratic diplomatic direct domestic dramatic due early eastern economic
effective electoral emergency entire environmental equal european exact
existing extra fair federal final financial firm fiscal foreign formal
former free fresh full further global good grand great green growing heavy
high historic hostile huge human humanitarian illegal immediate important
independent industrial initial international key large late leading legal
liberal likely limited local long low main major massive medical military
modern monetary national natural naval necessary net northern nuclear
official open ordinary overall parliamentary particular past personal
political poor popular possible powerful previous private progressive
public quick rapid rare real recent regional regular remote rural safe
scientific second secret senior serious severe sharp short significant
similar single small social southern special stable strategic strong
sudden temporary total tough traditional tropical uncertain unclear
unexpected united urban usual violent vital weak wealthy western whole wide
wider young
""".split()

ADVERBS_AND_OTHERS = """
already again almost also away better even ever far further however instead
later least less likely little longer much nearly never often once perhaps
quickly rather recently shortly slightly still then therefore together too
twice very well yet yesterday today tomorrow monday tuesday wednesday
thursday friday saturday sunday january february march april may june july
august september october november december morning evening afternoon
""".split()

PROPER_NOUNS = """
Afghanistan Africa Iran Korea North South Albania Algeria America Amsterdam Ankara Argentina
Armenia Asia Athens Australia Austria Azerbaijan Baghdad Bangkok Bangladesh
Beijing Beirut Belarus Belgium Berlin Bolivia Bosnia Brazil Brussels
Bucharest Budapest Bulgaria Cairo Cambodia Cameroon Canada Caracas Chad
Chicago Chile China Colombia Congo Croatia Cuba Cyprus Damascus Delhi
Denmark Dhaka Doha Dubai Ecuador Egypt Estonia Ethiopia Europe Finland
France Gaza Geneva Georgia Germany Ghana Greece Guatemala Haiti Havana
Helsinki Honduras Hungary India Indonesia Iraq Ireland Islamabad Israel
Istanbul Italy Jakarta Jamaica Japan Jerusalem Jordan Kabul Karachi
Kazakhstan Kenya Khartoum Kyiv Lagos Laos Latvia Lebanon Libya Lisbon
Lithuania London Luxembourg Madrid Malaysia Mali Manila Mexico Moldova
Mongolia Montenegro Morocco Moscow Mozambique Mumbai Myanmar Nairobi Nepal
Netherlands Nicaragua Niger Nigeria Norway Oman Oslo Ottawa Pakistan
Palestine Panama Paraguay Paris Peru Philippines Poland Portugal Prague
Qatar Riyadh Romania Rome Russia Rwanda Santiago Senegal Seoul Serbia
Singapore Slovakia Slovenia Somalia Spain Stockholm Sudan Sweden
Switzerland Sydney Syria Taipei Taiwan Tanzania Tehran Thailand Tokyo
Toronto Tunisia Turkey Uganda Ukraine Uruguay Venezuela Vienna Vietnam
Warsaw Washington Yemen Zambia Zimbabwe Reuters Associated Press Nato
Brexit Pentagon Kremlin Congress Senate Parliament Bundestag Commons
Treasury Interpol Unesco Unicef Opec Fifa Olympics Google Microsoft Apple
Amazon Tesla Boeing Airbus Toyota Samsung Shell Siemens Nestle Visa
Pfizer Moderna Netflix Uber Alibaba Huawei Sony Adams Ahmed Ali Anderson
Baker Brown Campbell Chen Clark Collins Davies Diaz Edwards Evans Fischer
Garcia Gonzalez Green Hall Harris Hassan Hughes Ibrahim Jackson Johnson
Jones Khan Kim Kumar Lee Lewis Lopez Martin Martinez Miller Mohammed Moore
Morales Muller Nguyen Okafor Patel Perez Petrov Phillips Ramirez Roberts
Robinson Rodriguez Rossi Sanchez Santos Schmidt Scott Silva Singh Smith
Suzuki Tanaka Taylor Thomas Thompson Turner Walker Wang White Williams
Wilson Wright Yamamoto Young Zhang
""".split()


# Verbs whose last consonant doubles before -ed and -ing.
_DOUBLED = {"admit", "ban", "drop", "permit", "plan", "scrap"}


def _verb_forms(verb):
    """The -s, -ed and -ing forms, by the plain spelling rules."""
    if verb in _DOUBLED:
        return [verb + "s", verb + verb[-1] + "ed", verb + verb[-1] + "ing"]
    if verb.endswith("ie"):
        return [verb + "s", verb + "d", verb[:-2] + "ying"]
    if verb.endswith("ee"):
        return [verb + "s", verb + "d", verb + "ing"]
    if verb.endswith("e"):
        stem = verb[:-1]
        return [verb + "s", verb + "d", stem + "ing"]
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return [verb[:-1] + "ies", verb[:-1] + "ied", verb + "ing"]
    if verb.endswith(("s", "sh", "ch", "x")):
        return [verb + "es", verb + "ed", verb + "ing"]
    return [verb + "s", verb + "ed", verb + "ing"]


def _plural(noun):
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return noun + "s"


def content_words():
    """Every content word, each once, in a fixed order."""
    words = []
    for verb in REGULAR_VERBS:
        words.append(verb)
        words.extend(_verb_forms(verb))
    words.extend(IRREGULAR_VERBS)
    for noun in NOUNS:
        words.extend([noun, _plural(noun)])
    words.extend(MASS_NOUNS + ADJECTIVES + ADVERBS_AND_OTHERS + PROPER_NOUNS)
    seen = set(FUNCTION_WORDS)
    unique = []
    for word in words:
        if word.lower() not in seen:
            seen.add(word.lower())
            unique.append(word)
    return unique

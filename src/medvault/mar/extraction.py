"""What a record's text says about the care it records: rules, run in the reader's session, never elsewhere.

From the pages of one record (mar/recordtext.py: text layer or OCR) this proposes the date of service, the
professionals (names with their credentials), the facility, the kind of document and its findings, each with
the page and the words it was read from, so the reader can check it against the record before accepting it.

Dates are classified by the label before them on their line: a date of birth, an admission, a discharge, an
injury, a signature or a fax stamp are not a date of service; an unlabelled date is one only if no labelled
date was found and it is not a date the record gives as someone's birth. Findings come with their negation,
ConText-style (Chapman et al.): a trigger ("denies", "no", "negative for", "without", "ruled out"…) negates
the findings after it (or before it, for a trailing trigger) up to the end of the sentence or a terminating
word ("but", "however"). "Denies neck pain" is thus a negated finding, never a finding.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from medvault.mar.pdftext import Pages

MONTHS = {
    m: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        1,
    )
    for m in names
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_DATE = re.compile(
    rf"\b(?:(?P<m>\d{{1,2}})[/-](?P<d>\d{{1,2}})[/-](?P<y>\d{{4}}|\d{{2}})"
    rf"|(?P<iy>\d{{4}})-(?P<im>\d{{2}})-(?P<id>\d{{2}})"
    rf"|(?P<tm>{_MONTH})\.?\s+(?P<td>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<ty>\d{{4}})"
    rf"|(?P<ed>\d{{1,2}})\s+(?P<em>{_MONTH})\.?,?\s+(?P<ey>\d{{4}}))\b",
    re.IGNORECASE,
)

# What a date is, by the label nearest before it on its line (after any earlier date); on a tie the first kind.
LABELS = (
    ("birth", r"(?:d\.?\s?o\.?\s?b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)"),
    ("admission", r"(?:admi(?:ssion|tted|t)(?:\s+date|\s+on)?)"),
    ("discharge", r"(?:discharge(?:d)?(?:\s+date|\s+on)?)"),
    (
        "injury",
        r"(?:date\s+of\s+(?:injury|incident|accident|loss|crash)|d\.?o\.?i\.?|(?:injury|incident|accident|crash)"
        r"\s+date|(?:mvc|mva|accident|collision|crash|fall|fell|injured)(?:\s+(?:on|of))?)",
    ),
    (
        "service",
        r"(?:date\s+of\s+(?:service|visit|exam(?:ination)?|procedure|surgery|operation|evaluation|treatment|study)"
        r"|d\.?o\.?s\.?|(?:service|visit|exam(?:ination)?|procedure|surgery|study|encounter|evaluation|treatment)\s+date"
        r"|(?:collected|collection\s+date|specimen\s+date|seen\s+on|date\s+seen|visit\s+on|examined\s+on))",
    ),
    (
        "other",
        r"(?:signed|dictated|transcribed|printed|faxed|fax\s+date|received|report(?:ed)?\s+date|billed|statement"
        r"\s+date|due(?:\s+date)?|issued|last\s+menstrual|lmp|updated|reviewed|expires?|policy)",
    ),
    ("generic", r"date"),
)
_LABELS = [(kind, re.compile(rf"\b{pattern}\b", re.IGNORECASE)) for kind, pattern in LABELS]
CHOICE = ("service", "admission", "generic", "injury", "unlabelled")

CREDENTIALS = (
    "M.D.", "MD", "D.O.", "DO", "PA-C", "PA", "APRN", "FNP-C", "FNP", "NP", "CRNA", "RN", "DPT", "PT", "PTA",
    "OTR/L", "OT", "LCSW", "LMSW", "LPC", "PhD", "PsyD", "DC", "DDS", "DMD", "MSN", "BSN",
)  # fmt: skip
_CRED = "|".join(re.escape(c) for c in sorted(CREDENTIALS, key=len, reverse=True))
_NAME_WORD = r"[A-Z](?:[a-z]+|'[A-Z][a-z]+)(?:-[A-Z][a-z]+)?"  # Chen, O'Brien, Smith-Jones
_NAME = rf"{_NAME_WORD}(?:[ \t]+[A-Z]\.)?(?:[ \t]+{_NAME_WORD}){{1,2}}"
_PROVIDER = re.compile(  # a name stays on its line: "Dr. R. Chen\nSeen by" is Dr. R. Chen
    rf"(?<![\w.])(?:(?P<dr>Dr\.?[ \t]+(?:[A-Z]\.[ \t]*)?{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)"
    rf"|(?P<name>{_NAME}),?[ \t]+(?P<cred>(?:{_CRED})(?:,[ \t]*(?:{_CRED}))*)(?![\w-]))"
)
_FACILITY = re.compile(
    r"\b(?:Hospital|Medical\s+Center|Medical\s+Centre|Health\s+System|Clinic|Urgent\s+Care|Imaging|Radiology"
    r"|Physical\s+Therapy|Rehabilitation|Orthopa?edics?|Surgery\s+Center|Laboratory|Laboratories|Health\s+Center"
    r"|Police\s+Department|Sheriff'?s\s+Office|Family\s+Practice|Associates)\b",
    re.IGNORECASE,
)
_FACILITY_LABEL = re.compile(r"^\s*(?:facility|hospital|clinic)\s*:\s*(?P<name>.{3,80})$", re.I | re.M)

DOCUMENT_TYPES = (  # (kind of document, occurrence type, words that name it), most specific first
    ("operative report", "procedure", r"operative\s+report|operation\s+report|procedure\s+note|op\s+note"),
    ("discharge summary", "encounter", r"discharge\s+summary"),
    ("police report", "note", r"police\s+report|crash\s+report|accident\s+report|incident\s+report"),
    ("bill", "note", r"itemi[sz]ed\s+(?:bill|statement)|statement\s+of\s+account|invoice|amount\s+due|balance\s+due"),
    ("imaging report", "test-result", r"radiology|imaging\s+report|\bMRI\b|\bCT\b|x-?ray|radiograph|ultrasound"),
    ("lab report", "test-result", r"laboratory|lab\s+results?|\bCBC\b|metabolic\s+panel|specimen|urinalysis"),
    ("emergency department note", "encounter", r"emergency\s+(?:department|room)|\bED\s+(?:note|visit)|triage"),
    ("physical therapy note", "encounter", r"physical\s+therapy|\bPT\s+(?:note|evaluation|visit)|therapy\s+progress"),
    ("consultation", "encounter", r"consultation|consult\s+note"),
    ("prescription", "medication", r"prescription|\bRx\b|medication\s+list"),
    ("office visit", "encounter", r"progress\s+note|office\s+visit|clinic\s+note|follow-?up\s+visit"),
)
_DOCUMENT_TYPES = [(name, kind, re.compile(words, re.I)) for name, kind, words in DOCUMENT_TYPES]

FINDING_WORDS = (
    "pain", "fracture", "strain", "sprain", "laceration", "contusion", "abrasion", "bruising", "tear", "rupture",
    "herniation", "dislocation", "concussion", "whiplash", "swelling", "tenderness", "numbness", "tingling",
    "weakness", "headache", "dizziness", "nausea", "vomiting", "loss of consciousness", "bleeding", "hematoma",
    "radiculopathy", "stenosis", "effusion", "spasm", "deformity", "instability", "fever", "infection",
)  # fmt: skip
_WORD = r"(?!(?:and|or|but|after|with|since|for|on|at)\b)\w+"  # a word of a finding's site, not a joint
_FINDING = re.compile(
    r"(?P<finding>(?:(?:left|right|bilateral|lower|upper|low|mild|moderate|severe|acute|chronic|cervical|lumbar|"
    r"thoracic|neck|back|head|knee|shoulder|wrist|ankle|hip|chest|abdominal|elbow|distal|proximal|radial|rib)\s+){0,3}"
    rf"(?:{'|'.join(FINDING_WORDS)})(?:\s+(?:of|to|in)\s+(?:the\s+)?(?:{_WORD}\s+){{0,2}}{_WORD})?)\b",
    re.IGNORECASE,
)
_PRE_NEGATION = re.compile(
    r"\b(?:no|not|denies|denied|denying|negative\s+for|without|no\s+evidence\s+of|no\s+signs?\s+of|free\s+of"
    r"|absence\s+of|absent|rules?\s+out|ruled\s+out|resolved|never\s+had)\b",
    re.IGNORECASE,
)
_POST_NEGATION = re.compile(r"\b(?:was|were|is|has\s+been)\s+(?:ruled\s+out|negative|absent|resolved)\b", re.I)
_TERMINATION = re.compile(r"\b(?:but|however|although|though|except|yet|aside\s+from|apart\s+from)\b", re.I)
_SENTENCE = re.compile(r"[^.;!?\n]+")
_WRAPPED = re.compile(r"\n(?=[a-z])")


@dataclass(frozen=True)
class Found:
    """One thing read from the record: what, on which page, in which words of it."""

    value: str
    page: int
    quote: str
    kind: str = ""


@dataclass
class Extracted:
    dates: list[Found] = field(default_factory=list)
    providers: list[Found] = field(default_factory=list)
    facility: Found | None = None
    document: Found | None = None
    occurrence_type: str = "note"
    findings: list[Found] = field(default_factory=list)  # kind: "present" or "negated"

    @property
    def date_of_service(self) -> Found | None:
        """The date this record is of: the first of the most telling kind; never one given as a birth date."""
        births = {d.value for d in self.dates if d.kind == "birth"}
        for kind in CHOICE:
            for found in self.dates:
                if found.kind == kind and found.value not in births:
                    return found
        return None


def _iso(match: re.Match) -> str | None:
    g = match.groupdict()
    if g["m"]:
        year, month, day = int(g["y"]), int(g["m"]), int(g["d"])
        if len(g["y"]) == 2:
            year += 2000 if year <= dt.date.today().year % 100 else 1900
    elif g["iy"]:
        year, month, day = int(g["iy"]), int(g["im"]), int(g["id"])
    elif g["tm"]:
        year, month, day = int(g["ty"]), MONTHS[g["tm"].lower()], int(g["td"])
    else:
        year, month, day = int(g["ey"]), MONTHS[g["em"].lower()], int(g["ed"])
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    return date.isoformat() if dt.date(1900, 1, 1) <= date <= dt.date.today() else None


def _line_of(text: str, start: int, end: int) -> tuple[str, str]:
    """The line holding text[start:end], and the part of it before `start`."""
    begin = text.rfind("\n", 0, start) + 1
    stop = text.find("\n", end)
    return text[begin : stop if stop >= 0 else len(text)].strip(), text[begin:start]


def _label(before: str) -> tuple[str, int]:
    """The kind of the date after `before`, and where its label starts in `before` (its end if unlabelled)."""
    best, kind, start = -1, "unlabelled", len(before)
    offset = max(len(before) - 60, 0)
    for name, pattern in _LABELS:
        for match in pattern.finditer(before, offset):
            if match.end() > best:
                best, kind, start = match.end(), name, match.start()
    return kind, start


def dates(text: str, page: int) -> list[Found]:
    """Every date of the text with its kind; the quote is its label and the date as written."""
    out = []
    for match in _DATE.finditer(text):
        value = _iso(match)
        if value is None:
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        earlier = list(_DATE.finditer(text, line_start, match.start()))
        begin = earlier[-1].end() if earlier else line_start
        kind, label = _label(text[begin : match.start()])
        out.append(Found(value, page, " ".join(text[begin + label : match.end()].split()), kind))
    return out


def providers(text: str, page: int) -> list[Found]:
    out = []
    for match in _PROVIDER.finditer(text):
        name = " ".join(match.group(0).split()).rstrip(",")
        out.append(Found(name, page, name))
    return out


def facility(texts: tuple[str, ...]) -> Found | None:
    """A labelled facility anywhere, else the first line naming one among the first page's first lines."""
    for page, text in enumerate(texts, 1):
        labelled = _FACILITY_LABEL.search(text)
        if labelled:
            name = labelled.group("name").strip()
            return Found(name, page, labelled.group(0).strip())
    if not texts:
        return None
    for line in [line.strip() for line in texts[0].splitlines() if line.strip()][:8]:
        if _FACILITY.search(line) and len(line) <= 80 and not _DATE.search(line):
            return Found(line.split(" - ")[0].strip(" ,"), 1, line)
    return None


def document_type(texts: tuple[str, ...]) -> tuple[Found | None, str]:
    """The kind of document, from its title lines first, then its first page."""
    first = texts[0] if texts else ""
    head = "\n".join([line for line in first.splitlines() if line.strip()][:6])
    for scope in (head, first):
        for name, kind, pattern in _DOCUMENT_TYPES:
            match = pattern.search(scope)
            if match:
                line, _ = _line_of(scope, match.start(), match.end())
                return Found(name, 1, line[:200]), kind
    return None, "note"


def findings(text: str, page: int) -> list[Found]:
    """Findings of each sentence, present or negated (ConText: a trigger's scope ends at a terminating word)."""
    out = []
    text = _WRAPPED.sub(" ", text)  # a line the layout wrapped mid-sentence goes on in lower case
    for sentence in _SENTENCE.finditer(text):
        words = sentence.group(0)
        stops = [m.start() for m in _TERMINATION.finditer(words)]
        triggers = [m.start() for m in _PRE_NEGATION.finditer(words)]
        post = [m.start() for m in _POST_NEGATION.finditer(words)]
        for match in _FINDING.finditer(words):
            at, end = match.start(), match.end()
            negated = any(t < at and not any(t < s < at for s in stops) for t in triggers) or any(
                p >= end and not any(end <= s < p for s in stops) for p in post
            )
            finding = " ".join(match.group("finding").split()).lower()
            out.append(Found(finding, page, " ".join(words.split())[:300], "negated" if negated else "present"))
    return out


def extract(pages: Pages) -> Extracted:
    """Everything the rules read from a record's pages."""
    result = Extracted()
    for page, text in enumerate(pages.texts, 1):
        result.dates += dates(text, page)
        for person in providers(text, page):
            if person.value not in {p.value for p in result.providers}:
                result.providers.append(person)
        for finding in findings(text, page):
            if (finding.value, finding.kind) not in {(f.value, f.kind) for f in result.findings}:
                result.findings.append(finding)
    result.facility = facility(pages.texts)
    result.document, result.occurrence_type = document_type(pages.texts)
    return result

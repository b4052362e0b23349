"""A realistic generated chart: the records of one patient after a car crash, with what each truly says.

38 records by default, as a reviewer meets them: ED notes, imaging, labs, physical therapy notes, an operative
report, a discharge summary, a bill, a multi-page police report with three witnesses, photos, a faxed copy of
a report (a near duplicate), an exact duplicate and one scanned PDF without a text layer; 5 facilities; 11
people written 22 ways; the patient's date of birth on nearly every page, often on the same line as the date
of service, in five date formats; a gap in care of several months. `truth` holds, for each record, its date of
service (None when it has none), the date of birth printed on it, its facility and the people named.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from tests.mar.pdfs import DEJAVU, make_pdf

PATIENT = "Jane Q. Sample"
DOB = dt.date(1981, 7, 2)
INCIDENT = dt.date(2024, 3, 1)
FACILITIES = (
    "St. Mercy Hospital",
    "Riverside Orthopaedic Clinic",
    "Valley Imaging Center",
    "Motion Physical Therapy",
    "Northgate Laboratory",
)
PEOPLE = {  # one person, the ways the records write them
    "chen": ("Robert Chen, MD", "Robert Chen MD", "Dr. R. Chen"),
    "lopez": ("Maria Lopez, PA-C", "Maria Lopez PA-C"),
    "patel": ("Aisha Patel, DO", "Dr. Aisha Patel"),
    "obrien": ("James O'Brien, DPT", "James O'Brien PT"),
    "park": ("Linda Park, MD", "Dr. Linda Park"),
    "green": ("Samuel Green, MD", "Dr. Samuel Green"),
    "wu": ("Kevin Wu, APRN", "Kevin Wu APRN"),
    "blake": ("Nora Blake, PTA", "Nora Blake PTA"),
    "ross": ("Helen Ross, LCSW", "Helen Ross LCSW"),
    "reyes": ("Tomas Reyes, CRNA", "Tomas Reyes CRNA"),
    "hart": ("Gina Hart, RN", "Gina Hart RN"),
}
FORMATS = (
    lambda d: d.strftime("%m/%d/%Y"),
    lambda d: d.strftime("%B %d, %Y").replace(" 0", " "),
    lambda d: d.isoformat(),
    lambda d: d.strftime("%d %b %Y"),
    lambda d: f"{d.month}/{d.day}/{d.strftime('%y')}",
)


@dataclass
class Record:
    name: str
    content: bytes
    content_type: str
    service_date: str | None  # the truth
    facility: str | None = None
    people: list[str] = field(default_factory=list)
    kind: str = ""
    scanned: bool = False
    pages: int = 1
    duplicate_of: str | None = None


def _fmt(day: dt.date, n: int) -> str:
    return FORMATS[n % len(FORMATS)](day)


def _header(facility: str, title: str, n: int, day: dt.date, label: str) -> str:
    dob = _fmt(DOB, n + 1)
    if n % 2:
        return f"{facility}\n{title}\nPatient: {PATIENT}    DOB: {dob}    {label}: {_fmt(day, n)}\n"
    return f"{facility}\n{title}\n{label}: {_fmt(day, n)}\nPatient: {PATIENT}\nDate of Birth: {dob}\n"


def _ed(n: int, day: dt.date) -> tuple[str, list[str]]:
    people = [PEOPLE["patel"][n % 2], PEOPLE["hart"][n % 2]]
    text = _header(FACILITIES[0], "Emergency Department Note", n, day, "Date of Service") + (
        f"Date of Injury: {_fmt(INCIDENT, n + 2)}\n"
        "HPI: Restrained driver in a motor vehicle collision. Reports neck pain and low back pain. "
        "Denies loss of consciousness. No chest pain.\n"
        f"Assessment: cervical strain; lumbar strain.\nAttending: {people[0]}\nTriage nurse: {people[1]}\n"
    )
    return text, people


def _imaging(n: int, day: dt.date, study: str) -> tuple[str, list[str]]:
    person = PEOPLE["park"][n % 2]
    text = _header(FACILITIES[2], f"Radiology Report - {study}", n, day, "Exam Date") + (
        "Indication: neck pain after motor vehicle collision.\n"
        "Findings: No acute fracture. Mild disc herniation at C5-C6 without stenosis.\n"
        f"Impression: disc herniation C5-C6.\nInterpreting radiologist: {person}\n"
    )
    return text, [person]


def _lab(n: int, day: dt.date) -> tuple[str, list[str]]:
    person = PEOPLE["wu"][n % 2]
    text = _header(FACILITIES[4], "Laboratory Results - CBC", n, day, "Collected") + (
        f"WBC 7.2 x10^3/uL (4.0-11.0)\nHemoglobin 13.1 g/dL (12.0-16.0)\nPlatelets 250 x10^3/uL\nOrdered by: {person}\n"
    )
    return text, [person]


def _pt(n: int, day: dt.date) -> tuple[str, list[str]]:
    people = [PEOPLE["obrien"][n % 2], PEOPLE["blake"][n % 2]]
    text = _header(FACILITIES[3], "Physical Therapy Progress Note", n, day, "Visit Date") + (
        f"Date of Injury: {_fmt(INCIDENT, n)}\n"
        "Subjective: neck pain improving, 4/10. Denies numbness or tingling.\n"
        f"Plan: continue cervical stabilisation exercises.\nTherapist: {people[0]}\nAssisted by {people[1]}\n"
    )
    return text, people


def _office(n: int, day: dt.date) -> tuple[str, list[str]]:
    people = [PEOPLE["chen"][n % 3], PEOPLE["lopez"][n % 2]]
    text = _header(FACILITIES[1], "Office Visit - Progress Note", n, day, "DOS") + (
        "Follow-up for neck pain after motor vehicle collision. Reports headache but denies dizziness.\n"
        f"Assessment: cervical strain, improving.\nProvider: {people[0]}\nSeen with {people[1]}\n"
        f"Electronically signed by {people[0]} on {_fmt(day + dt.timedelta(days=2), n)}\n"
    )
    return text, people


def _operative(n: int, day: dt.date) -> tuple[str, list[str]]:
    people = [PEOPLE["green"][0], PEOPLE["reyes"][n % 2]]
    text = _header(FACILITIES[0], "Operative Report", n, day, "Date of Surgery") + (
        "Procedure: anterior cervical discectomy and fusion, C5-C6.\nFindings: disc herniation at C5-C6.\n"
        f"Surgeon: {people[0]}\nAnesthesia: {people[1]}\n"
    )
    return text, people


def _discharge(n: int, day: dt.date) -> tuple[str, list[str]]:
    person = PEOPLE["green"][1]
    text = (
        f"{FACILITIES[0]}\nDischarge Summary\nPatient: {PATIENT}   DOB: {_fmt(DOB, n)}\n"
        f"Admission Date: {_fmt(day, n)}    Discharge Date: {_fmt(day + dt.timedelta(days=2), n)}\n"
        f"Hospital course: uneventful after fusion. No fever.\nDischarging physician: {person}\n"
    )
    return text, [person]


def _bill(n: int, day: dt.date) -> tuple[str, list[str]]:
    text = (
        f"{FACILITIES[0]}\nItemized Statement\nStatement Date: {_fmt(day + dt.timedelta(days=30), n)}\n"
        f"Patient: {PATIENT}   Date of Birth: {_fmt(DOB, n)}\n"
        f"Date of Service: {_fmt(day, n)}   CPT 99284 Emergency visit   $1,240.00\nAmount due: $1,240.00\n"
    )
    return text, []


def _police(day: dt.date) -> list[str]:
    return [
        f"Metro City Police Department\nTraffic Crash Report\nDate of Incident: {_fmt(day, 0)}\n"
        f"Location: Main St and 5th Ave\nDriver 1: {PATIENT}, DOB {_fmt(DOB, 0)}\n"
        "Summary: vehicle 2 entered the intersection against a red light.\n",
        "Witness statement - Alan Brooks\nI saw the blue truck run the red light at about 8:15 pm. "
        "It was going about 40 mph.\n",
        "Witness statement - Beth Carver\nThe light was yellow, not red, around 8:30 pm. The truck was "
        "doing maybe 25 mph.\n",
        "Witness statement - Carl Dunn\nI heard the crash at 8:15 pm on Main St. I did not see the light.\n",
    ]


def png_page(text: str, size: tuple[int, int] = (1275, 1650)) -> Image.Image:
    """A page of black text on white, as a scanner at 150 dpi would give it."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(DEJAVU), 26)
    for i, line in enumerate(text.splitlines()):
        draw.text((90, 110 + 44 * i), line, fill=0, font=font)
    return image


def scanned_pdf(text: str) -> bytes:
    """An image-only PDF: the page is a picture, with no text layer for pypdf to find."""
    out = io.BytesIO()
    png_page(text).save(out, format="PDF", resolution=150)
    return out.getvalue()


def photo(seed: int) -> bytes:
    image = Image.new("RGB", (320, 240), (180 + seed % 60, 120, 110))
    ImageDraw.Draw(image).ellipse((80 + seed, 60, 220, 180), fill=(150, 60 + seed % 90, 70))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def chart(records: int = 38) -> list[Record]:
    """A chart of at least 30 records (more are PT and office visits, a week apart)."""
    day = INCIDENT
    out: list[Record] = []

    def add(name: str, made: tuple[str, list[str]], when: dt.date, facility: str, kind: str) -> None:
        text, people = made
        out.append(Record(name, make_pdf([text]), "application/pdf", when.isoformat(), facility, people, kind))

    add("ed-note.pdf", _ed(0, day), day, FACILITIES[0], "emergency department note")
    add("bill-ed.pdf", _bill(1, day), day, FACILITIES[0], "bill")
    police = _police(day)
    out.append(
        Record(
            "police-report.pdf",
            make_pdf(police),
            "application/pdf",
            day.isoformat(),
            None,
            [],
            "police report",
            pages=4,
        )
    )
    for i in range(3):
        out.append(Record(f"photo-{i}.png", photo(i), "image/png", None, kind="photo"))
    xr = day + dt.timedelta(days=1)
    add("xray-cspine.pdf", _imaging(2, xr, "X-ray cervical spine"), xr, FACILITIES[2], "imaging report")
    lab = day + dt.timedelta(days=1)
    add("cbc.pdf", _lab(3, lab), lab, FACILITIES[4], "lab report")
    n = 4
    for week in range(1, 4):
        when = day + dt.timedelta(days=7 * week)
        add(f"office-{week}.pdf", _office(n, when), when, FACILITIES[1], "office visit")
        n += 1
    mri = day + dt.timedelta(days=20)
    mri_text = _imaging(n, mri, "MRI cervical spine")
    add("mri-cspine.pdf", mri_text, mri, FACILITIES[2], "imaging report")
    n += 1
    out.append(
        Record(
            "mri-cspine-fax.pdf",
            make_pdf(["FAX 555-0100  page 1/1\n" + mri_text[0]]),
            "application/pdf",
            mri.isoformat(),
            FACILITIES[2],
            mri_text[1],
            "imaging report",
            duplicate_of="mri-cspine.pdf",
        )
    )
    surgery = day + dt.timedelta(days=40)
    add("operative.pdf", _operative(n, surgery), surgery, FACILITIES[0], "operative report")
    add("discharge.pdf", _discharge(n + 1, surgery), surgery, FACILITIES[0], "discharge summary")
    n += 2
    # A gap in care: nothing from week 7 to week 30.
    visits = day + dt.timedelta(days=7 * 30)
    scan_day = visits - dt.timedelta(days=3)
    scan_text, scan_people = _office(n, scan_day)
    out.append(
        Record(
            "scanned-letter.pdf",
            scanned_pdf(scan_text),
            "application/pdf",
            scan_day.isoformat(),
            FACILITIES[1],
            scan_people,
            "office visit",
            scanned=True,
        )
    )
    n += 1
    week = 0
    while len(out) < records - 1:
        when = visits + dt.timedelta(days=7 * week)
        week += 1
        if n % 3:
            add(f"pt-{n}.pdf", _pt(n, when), when, FACILITIES[3], "physical therapy note")
        else:
            add(f"office-{n}.pdf", _office(n, when), when, FACILITIES[1], "office visit")
        n += 1
    first = out[0]
    out.append(
        Record(
            "ed-note-copy.pdf",
            first.content,
            first.content_type,
            first.service_date,
            first.facility,
            first.people,
            first.kind,
            duplicate_of=first.name,
        )
    )
    return out


# --- near duplicates: notes from one template, and a fax of a report ----------------------------------------

_BOILERPLATE = (
    "Patient was seen for a scheduled physical therapy session following the motor vehicle collision. "
    "Treatment was tolerated without adverse reaction and the home exercise program was reviewed. "
    "Therapeutic exercise, manual therapy and neuromuscular re-education were provided as documented."
)


def pt_daily_note(visit: int, day: dt.date, pain: int, rotation: tuple[int, int], minutes: int) -> str:
    """A daily note from the clinic's template: same headings and boilerplate, this visit's date and numbers."""
    return (
        f"{FACILITIES[3]}\nPhysical Therapy Daily Note\nPatient: {PATIENT}    DOB: {_fmt(DOB, 0)}\n"
        f"Date of Service: {_fmt(day, 0)}\nVisit number: {visit} of 12\n{_BOILERPLATE}\n"
        f"Pain today: {pain}/10\nCervical rotation: left {rotation[0]} degrees, right {rotation[1]} degrees\n"
        f"Total treatment time: {minutes} minutes\nPlan: continue plan of care twice weekly.\n"
        f"Therapist: {PEOPLE['obrien'][0]}\n"
    )


def consult_report(day: dt.date) -> list[str]:
    """A two-page neurosurgical consultation: the report a clinic later receives again by fax."""
    return [
        f"{FACILITIES[0]}\nNeurosurgery Consultation Report\nPatient: {PATIENT}\nDate of Birth: {_fmt(DOB, 1)}\n"
        f"Date of Service: {_fmt(day, 1)}\nReferring provider: {PEOPLE['chen'][0]}\n"
        "History: The patient reports persistent neck pain radiating into the left arm since the collision, "
        "with intermittent numbness of the thumb and index finger. Conservative care with physical therapy "
        "for six weeks gave partial relief only.\n"
        "Examination: Strength is 4/5 in the left biceps and wrist extensors. Reflexes are diminished at the "
        "left biceps. Spurling test is positive on the left.\n",
        "Imaging: MRI of the cervical spine shows a left paracentral disc herniation at C5-C6 with moderate "
        "foraminal narrowing.\nAssessment: left C6 radiculopathy from the disc herniation at C5-C6.\n"
        "Plan: anterior cervical discectomy and fusion at C5-C6 was discussed, with its risks and the "
        "alternatives. The patient wishes to proceed.\n"
        f"Consultant: {PEOPLE['green'][0]}\n",
    ]


_MISREADINGS = (
    ("herniation", "hemiation"),
    ("left biceps", "1eft biceps"),
    ("cervical", "cervlcal"),
    ("persistent", "persistcnt"),
    ("Examination", "Exarnination"),
    ("Conservative", "Conservativc"),
    ("radiculopathy", "radicu1opathy"),
    ("alternatives", "altematives"),
)
FAX_FOOTER = "CONFIDENTIAL: this fax may hold protected health information. If received in error call (555) 010-0199."


def faxed(pages: list[str], sent: dt.datetime, sender: str) -> list[str]:
    """The pages as a fax machine and OCR give them back: a header line on each page, the lines wrapped
    elsewhere, and a few letters misread (never in a date or a number)."""
    import textwrap

    out = []
    for n, page in enumerate(pages, 1):
        for right, wrong in _MISREADINGS:
            page = page.replace(right, wrong, 1)
        wrapped = "\n".join(textwrap.fill(line, 58) for line in page.splitlines())
        header = f"FROM: {sender}  (555) 010-0199    {sent:%m/%d/%Y %H:%M}    PAGE {n}/{len(pages)}"
        out.append(f"{header}\n{wrapped}\n{FAX_FOOTER}\n")
    return out


def near_duplicates() -> dict[str, Record]:
    """Three daily PT notes of different days from one template, a consultation report and its fax."""
    first = INCIDENT + dt.timedelta(days=14)
    out = {}
    for visit, (pain, rotation, minutes) in enumerate(((6, (45, 50), 45), (5, (50, 55), 45), (5, (55, 60), 40)), 1):
        day = first + dt.timedelta(days=3 * visit)
        text = pt_daily_note(visit, day, pain, rotation, minutes)
        out[f"pt-daily-{visit}"] = Record(
            f"pt-daily-{visit}.pdf",
            make_pdf([text]),
            "application/pdf",
            day.isoformat(),
            FACILITIES[3],
            [PEOPLE["obrien"][0]],
            "physical therapy note",
        )
    day = INCIDENT + dt.timedelta(days=30)
    report = consult_report(day)
    people = [PEOPLE["chen"][0], PEOPLE["green"][0]]
    out["consult"] = Record(
        "consult.pdf", make_pdf(report), "application/pdf", day.isoformat(), FACILITIES[0], people, pages=2
    )
    sent = dt.datetime.combine(day + dt.timedelta(days=9), dt.time(10, 14))
    out["consult-fax"] = Record(
        "consult-fax.pdf",
        make_pdf(faxed(report, sent, "St Mercy HIM Dept")),
        "application/pdf",
        day.isoformat(),
        FACILITIES[0],
        people,
        pages=2,
        duplicate_of="consult.pdf",
    )
    return out

"""PDF renderings of the statement and the evidence pack (fpdf2: pure Python, from PyPI alone).

Laid out for a customer to read: a title block, then tables. The text is set in DejaVu Sans
(`reports/fonts`, its licence beside it), embedded as the subset used: Latin, Greek, Cyrillic,
Hebrew and Arabic letters print as they are. fpdf2's core Helvetica, used before, covers
Latin-1 only, and names such as "Сервис" printed as "??????" (found by an outside sweep). Arabic
prints letter by letter, unjoined (shaping would need HarfBuzz); a character the font lacks (an
emoji) is left out. Text longer than its table cell is cut there; free text (a waiver's reason)
is printed in full, wrapped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
# fpdf2 logs each character the font lacks (an emoji in a job's summary), and fontTools each step
# of cutting the subset, at INFO: neither is news to the service's log.
logging.getLogger("fpdf.output").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.WARNING)


def _text(value) -> str:
    return "-" if value is None or value == "" else str(value)


class _Document(FPDF):
    def __init__(self, title: str, subtitle: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.add_font(FONT, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
        self.title_text, self.subtitle = title, subtitle
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(_text(title))
        self.set_creator("SLA service")
        self.add_page()
        self.set_font(FONT, "B", 15)
        self.cell(0, 9, _text(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, "", 10)
        self.multi_cell(0, 5, _text(subtitle), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def footer(self):
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, _text(f"{self.title_text} - page {self.page_no()}"), align="C")

    def heading(self, text: str):
        self.ln(2)
        self.set_font(FONT, "B", 12)
        self.cell(0, 7, _text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, "", 9)

    def pairs(self, rows: list[tuple[str, object]]):
        self.set_font(FONT, "", 9)
        for label, value in rows:
            self.set_font(FONT, "B", 9)
            self.cell(55, 5, _text(label))
            self.set_font(FONT, "", 9)
            self.multi_cell(0, 5, _text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table(self, header: list[str], rows: list[list], widths: list[int]):
        self.set_font(FONT, "B", 8)
        self.set_fill_color(230, 236, 245)
        for title, width in zip(header, widths, strict=True):
            self.cell(width, 6, _text(title), border=1, fill=True)
        self.ln()
        self.set_font(FONT, "", 8)
        for row in rows:
            if self.get_y() > self.h - 25:
                self.add_page()
            for value, width in zip(row, widths, strict=True):
                text = _text(value)
                while text and self.get_string_width(text) > width - 2:
                    text = text[:-1]
                self.cell(width, 5, text, border=1)
            self.ln()
        if not rows:
            self.cell(sum(widths), 5, "None.", border=1)
            self.ln()


def _waiver(line: dict) -> list[tuple[str, str]]:
    """Who waived a breach, when and why (the reason in full: it is why nothing is owed)."""
    return [
        ("Waived by", f"{(line['waived_by'] or {}).get('name') or '-'} at {line['waived_at']}"),
        ("Reason", line["waiver_reason"]),
    ]


def statement_pdf(statement: dict) -> bytes:
    contract = statement["contract"]
    doc = _Document(
        f"Service-credit statement {statement['month']}",
        f"Contract {contract['reference']} - {contract['name']}; counterparty {statement['counterparty']['name']}. "
        f"Month in {statement['time_zone']}: {statement['period']['from']} to {statement['period']['to']}.",
    )
    doc.heading("Breaches detected this month")
    doc.table(
        [
            "Job",
            "Rule",
            "Metric",
            "Target",
            "Actual",
            "Over",
            "Before caps",
            "Breach cap",
            "Month cap",
            "Owed",
            "State",
        ],
        [
            [
                line["work_order"]["name"],
                line["sla_rule"]["name"],
                line["metric"],
                line["target_minutes"],
                line["actual_minutes"],
                line["overage_minutes"],
                line["penalty_before_caps"],
                line["penalty_after_breach_cap"],
                line["penalty_after_monthly_cap"],
                f"{line['penalty']} {line['currency']}",
                line["state"],
            ]
            for line in statement["breaches"]
        ],
        [22, 30, 15, 12, 12, 11, 17, 17, 17, 20, 17],
    )
    waived = [line for line in statement["breaches"] if line["state"] == "waived"]
    if waived:
        # Owed here: zero if waived by the month's end; a later waiver is a correction of its own month.
        doc.heading("Waived breaches")
        for line in waived:  # the reason in full, wrapped: it is why nothing is owed
            doc.pairs(
                [
                    ("Job", line["work_order"]["name"]),
                    ("Owed this month", f"{line['penalty']} {line['currency']}"),
                    *_waiver(line),
                ]
            )
            doc.ln(1)
    if statement["waiver_corrections"]:
        doc.heading("Waivers this month of earlier months' penalties")
        for line in statement["waiver_corrections"]:
            doc.pairs(
                [
                    ("Job", line["work_order"]["name"]),
                    ("Penalty of", line["month"]),
                    ("Amount", f"{line['amount']} {line['currency']}"),
                    *_waiver(line),
                ]
            )
            doc.ln(1)
    if statement["posted_penalties"]:
        doc.heading("Penalties posted by hand")
        for line in statement["posted_penalties"]:  # the description in full: it is why it is owed
            doc.pairs(
                [
                    ("Amount", f"{line['amount']} {line['currency']}"),
                    *([("For", line["breach"]["name"])] if line["breach"] else []),
                    ("Dated", line["occurred_at"]),
                    ("Posted by", f"{(line['posted_by'] or {}).get('name') or '-'} at {line['posted_at']}"),
                    ("Description", line["description"]),
                ]
            )
            doc.ln(1)
    doc.heading("Totals")
    doc.table(
        ["Currency", "Penalties owed", "of which posted", "Corrections", "Waived"],
        [
            [currency, figures["penalties"], figures["posted"], figures["corrections"], figures["waived"]]
            for currency, figures in statement["totals"].items()
        ],
        [30, 45, 45, 45, 45],
    )
    hours = statement["hours"]
    doc.heading("Hours this month")
    doc.pairs(
        [
            ("Opening balance", hours["opening_balance"]),
            ("Allocations", hours["allocations"]),
            ("Work charged", hours["work"]),
            ("(hours worked)", hours["worked"]),
            ("Adjustments", hours["adjustments"]),
            ("Expiries", hours["expiries"]),
            ("Closing balance", hours["closing_balance"]),
        ]
    )
    doc.heading("Work by job")
    doc.table(
        ["Job", "Hours charged", "Hours worked"],
        [
            [(row["work_order"] or {}).get("name", "no job"), row["hours"], row["worked"]]
            for row in hours["work_by_job"]
        ],
        [70, 30, 30],
    )
    return bytes(doc.output())


def evidence_pdf(pack: dict) -> bytes:
    breach, job, rule, clock_data, penalty = (
        pack["breach"],
        pack["work_order"],
        pack["rule"],
        pack["clock"],
        pack["penalty"],
    )
    doc = _Document(
        f"Breach evidence #{breach['id']}",
        f"Contract {pack['contract']['reference']} - {pack['contract']['name']}. SHA-256 of the canonical JSON: "
        f"{pack['sha256']}",
    )
    doc.heading("Job")
    doc.pairs(
        [
            ("Reference", job["reference"] or job["id"]),
            ("Priority", job["priority"]),
            ("Reported", job["reported_at"]),
            ("Responded", job["responded_at"]),
            ("On site", job["on_site_at"]),
            ("Resolved", job["resolved_at"]),
        ]
    )
    history = [[row["status"], row["recorded_at"]] for row in job["status_history"]]
    doc.table(["Status", "Recorded at"], history, [40, 60])
    doc.heading("Holds")
    doc.table(
        ["Kind", "Start", "End", "Pauses this rule", "Reason"],
        [
            [h["kind"], h["start"], h["end"], "yes" if h["pauses_this_rule"] else "no", h["reason"]]
            for h in pack["holds"]
        ],
        [20, 42, 42, 26, 60],
    )
    doc.heading("Rule in force")
    calendar = rule["calendar"]
    doc.pairs(
        [
            ("Rule", f"{rule['name']} ({rule['metric']})"),
            ("Target", f"{rule['target_minutes']} business minutes"),
            ("In force", f"{rule['effective_from']} to {rule['effective_to'] or 'open'}"),
            ("Pause on hold", "yes" if rule["pause_on_hold"] else "no"),
            ("Calendar", "24x7" if calendar is None else f"{calendar['name']} ({calendar['time_zone']})"),
            ("Penalty clause", rule["penalty"]),
            ("Monthly cap", rule["monthly_penalty_cap"]),
        ]
    )
    doc.heading("Working intervals between start and stop")
    doc.pairs(
        [
            ("Start", clock_data["start"]),
            ("Measured until", clock_data["measured_until"]),
            ("Holidays in span", ", ".join(clock_data["holidays_in_span"]) or "none"),
            ("DST changes in span", ", ".join(change["at"] for change in clock_data["dst_changes"]) or "none"),
        ]
    )
    doc.table(
        ["Start", "End", "Seconds", "Paused", "Business seconds"],
        [
            [row["start"], row["end"], row["seconds"], row["paused_seconds"], row["business_seconds"]]
            for row in clock_data["working_intervals"]
        ],
        [45, 45, 25, 25, 35],
    )
    doc.heading("Result")
    doc.pairs(
        [
            ("Due at", clock_data["due_at"]),
            ("Stop", clock_data["stop"] or "still running"),
            ("Business seconds", clock_data["business_seconds"]),
            ("Actual minutes", clock_data["actual_minutes"]),
            ("Overage minutes", clock_data["overage_minutes"]),
        ]
    )
    doc.heading("Penalty step by step")
    doc.pairs(
        [
            ("Fixed amount", penalty["fixed_amount"]),
            (
                "Per started unit",
                f"{penalty['per_unit_amount']} x {penalty['started_units']} unit(s)"
                f" of {penalty['unit_minutes'] or '-'} min",
            ),
            ("Before caps", penalty["before_caps"]),
            ("Per-breach cap", penalty["per_breach_cap"] or "none"),
            ("After per-breach cap", penalty["after_breach_cap"]),
            (
                "Month's other breaches",
                f"{len(penalty['month_other_breaches'])}, total {penalty['month_others_total']}",
            ),
            ("Monthly cap", penalty["monthly_cap"] or "none"),
            ("After monthly cap", penalty["after_monthly_cap"]),
            ("Waived", "yes" if penalty["waived"] else "no"),
            ("Owed", f"{penalty['owed']} {penalty['currency']}"),
        ]
    )
    doc.heading("Agreement with the stored breach")
    doc.pairs([(key, "agrees" if value else "DIFFERS") for key, value in pack["agrees_with_stored"].items()])
    return bytes(doc.output())

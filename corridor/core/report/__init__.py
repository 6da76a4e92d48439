"""``corridor report``'s core: what crossed where, under which instrument, and the record of
processing activities of the configured transfers. Pure: values in, text out.

model: audit events + the corridor file + a window -> a Report (replays once, per-chain
reconciliation); chains: audit record values -> decoded events and each chain walked;
document: the Report as a JSON document with stable keys; register: the records of
processing (GDPR Art. 30 style) from the corridor file alone; layout: either document as
headings, lines and tables; render_md, render_html: a layout as Markdown or as one
self-contained HTML page. Reading the audit topic is ``corridor.kafka``'s.
"""

from corridor.core.report.chains import SplitLog, chain_statuses, split_log
from corridor.core.report.document import iso, report_document
from corridor.core.report.layout import Layout, register_layout, report_layout
from corridor.core.report.model import Report, Window, build_report
from corridor.core.report.register import records_of_processing, register_document
from corridor.core.report.render_html import html_page
from corridor.core.report.render_md import markdown

__all__ = [
    "Layout",
    "Report",
    "SplitLog",
    "Window",
    "build_report",
    "chain_statuses",
    "html_page",
    "iso",
    "markdown",
    "records_of_processing",
    "register_document",
    "register_layout",
    "report_document",
    "report_layout",
    "split_log",
]

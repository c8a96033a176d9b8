#!/usr/bin/python3
"""A table as a Word document (docx), for search_export(..., 'docx').

Run by a backend (extension/export.c) as a program of its own, under the
PDF helper's limits (address space, CPU, wall clock), with the converter's
Python (ioffice.convert_python) and python-docx (Debian python3-docx):
    python3 -I ioffice_docx.py  < spec  > file.docx
The spec is the one the PDF helper's "table" reads (helpers/ioffice_pdf.cpp):
UTF-8 lines of tab-separated fields, "title", "line", "col WIDTH CENTRE
HEADING" and "row CELL...".  The document: A4 landscape, Times New Roman
(Decree 30's font), the title lines centred, then the table with its
heading row repeated on each page.  Exit status 1: a spec it cannot read.
"""
import io
import sys

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt


def main():
    heads, cols, rows = [], [], []
    for line in sys.stdin.buffer.read().decode('utf-8').split('\n'):
        f = line.split('\t')
        if f[0] in ('title', 'line') and len(f) == 2:
            heads.append((f[0] == 'title', f[1]))
        elif f[0] == 'col' and len(f) == 4:
            cols.append((max(1.0, float(f[1])), f[2] == '1', f[3]))
        elif f[0] == 'row':
            rows.append(f[1:])
        elif line:
            return 1
    if not cols:
        return 1

    doc = Document()
    doc.core_properties.title = heads[0][1] if heads else ''
    style = doc.styles['Normal']
    style.font.name = 'Times New Roman'
    style.font.size = Pt(11)
    # East Asian and complex-script slots too, so that Word keeps the font
    style.element.rPr.rFonts.set(qn('w:eastAsia'), 'Times New Roman')
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    for m in ('left_margin', 'right_margin', 'top_margin', 'bottom_margin'):
        setattr(section, m, Mm(15))

    for big, text in heads:
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = p.add_run(text)
        run.bold = big
        run.font.size = Pt(14 if big else 12)

    table = doc.add_table(rows=1, cols=len(cols))
    table.style = 'Table Grid'
    total = sum(c[0] for c in cols)
    usable = Mm(297 - 30)
    widths = [int(usable * c[0] / total) for c in cols]
    header = table.rows[0]
    # the heading row repeated at the top of each page
    tr_pr = header._tr.get_or_add_trPr()
    repeat = OxmlElement('w:tblHeader')
    repeat.set(qn('w:val'), 'true')
    tr_pr.append(repeat)
    for i, (_, _, heading) in enumerate(cols):
        cell = header.cells[i]
        cell.width = widths[i]
        p = cell.paragraphs[0]
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.add_run(heading).bold = True
    for r in rows:
        cells = table.add_row().cells
        for i, (_, centre, _) in enumerate(cols):
            cells[i].width = widths[i]
            p = cells[i].paragraphs[0]
            if centre:
                p.alignment = WD_ALIGN_PARAGRAPH.CENTER
            p.add_run(r[i] if i < len(r) else '')

    out = io.BytesIO()
    doc.save(out)
    sys.stdout.buffer.write(out.getvalue())
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception:  # a spec it cannot read, or python-docx missing
        sys.exit(1)

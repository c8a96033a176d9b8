#!/usr/bin/python3
"""The text of a Word (docx) or Excel (xlsx) file, for search().

Run by the signing worker (workers/text_jobs.c) under the PDF helper's
limits (address space, CPU, wall clock), never in a server process:
    python3 -I ioffice_text.py docx|xlsx MAX_BYTES  < file  > text
Writes at most MAX_BYTES of UTF-8 text (paragraphs and cells one a line);
reads at most 8 times that of each part's XML, so that a zip bomb costs no
more.  No XML parser (entities, DTDs): the text runs are taken by pattern
and their five predefined entities and character references decoded.
Exit status 1: not a file of that kind it can read.

The binary formats of Word 97-2003 (doc) and Excel 97-2003 (xls) are read
by the converter's running LibreOffice (workers/ioffice_convert.py), which
the signer does not wait for: starting LibreOffice here for each file held
the signer for seconds.
"""
import html
import io
import re
import sys
import zipfile

RUN = {
    # a text run, or the end of a paragraph (a new line)
    'docx': re.compile(rb'<w:t(?:\s[^>]*)?>([^<]*)</w:t>|(</w:p>)'),
    # a shared or inline string, each a line
    'xlsx': re.compile(rb'<t(?:\s[^>]*)?>([^<]*)</t>()'),
}
PARTS = {
    'docx': re.compile(r'word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml$'),
    'xlsx': re.compile(r'xl/(sharedStrings|worksheets/sheet\d+)\.xml$'),
}


def main():
    kind, limit = sys.argv[1], int(sys.argv[2])
    if kind not in RUN:
        return 1
    out = io.BytesIO()
    try:
        z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))
        names = sorted(n for n in z.namelist() if PARTS[kind].match(n))
        first = 'word/document.xml' if kind == 'docx' else 'xl/sharedStrings.xml'
        if kind == 'docx' and first not in names:
            return 1
        names.sort(key=lambda n: n != first)
        for name in names:
            with z.open(name) as part:
                xml = part.read(8 * limit)
            for m in RUN[kind].finditer(xml):
                if m.group(1) is not None:
                    out.write(html.unescape(m.group(1).decode('utf-8', 'replace')).encode('utf-8'))
                if m.group(2) is not None:
                    out.write(b'\n')
                if out.tell() >= limit:
                    break
            out.write(b'\n')
            if out.tell() >= limit:
                break
    except Exception:  # whatever the file did to the reader: not one it can read
        return 1
    sys.stdout.buffer.write(out.getvalue()[:limit])
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""The text of a Word (docx) or Excel (xlsx) file, or of a scanned PDF, for search().

Run by the signing worker (workers/text_jobs.c) under the PDF helper's
limits (address space, CPU, wall clock), never in a server process:
    python3 -I ioffice_text.py docx|xlsx MAX_BYTES  < file  > text
Writes at most MAX_BYTES of UTF-8 text (paragraphs and cells one a line);
reads at most 8 times that of each part's XML, so that a zip bomb costs no
more.  No XML parser (entities, DTDs): the text runs are taken by pattern
and their five predefined entities and character references decoded.
Exit status 1: not a file of that kind it can read.

A scanned PDF (pdftotext found no text in it) is read by OCR:
    python3 -I ioffice_text.py ocr MAX_BYTES PAGES SECONDS  < pdf  > text
poppler's pdftoppm renders its first PAGES pages as grey images, Tesseract
(the Vietnamese language data, with English) reads each, one at a time,
all within SECONDS (the pages left when the time is spent are not read).
Exit status 3: Tesseract or its Vietnamese data is not installed.

The binary formats of Word 97-2003 (doc) and Excel 97-2003 (xls) are read
by the converter's running LibreOffice (workers/ioffice_convert.py), which
the signer does not wait for: starting LibreOffice here for each file held
the signer for seconds.
"""
import html
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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


PDFTOPPM = '/usr/bin/pdftoppm'
DPI = '300'


def ocr_languages():
    """Tesseract's languages to read with: Vietnamese (and English, for the
    words of forms and codes), or None when the Vietnamese data is missing."""
    tesseract = shutil.which('tesseract', path='/usr/bin:/usr/local/bin')
    if tesseract is None:
        return None, None
    try:
        listed = subprocess.run([tesseract, '--list-langs'], capture_output=True,
                                timeout=30).stdout.decode('utf-8', 'replace').split()
    except (OSError, subprocess.SubprocessError):
        return None, None
    if 'vie' not in listed:
        return tesseract, None
    return tesseract, 'vie+eng' if 'eng' in listed else 'vie'


def ocr(limit, pages, seconds):
    """The text of a scanned PDF on stdin, page after page, within seconds."""
    deadline = time.monotonic() + seconds
    tesseract, langs = ocr_languages()
    if langs is None:
        return 3
    # one thread each: the worker's machine serves the database too
    env = dict(os.environ, OMP_THREAD_LIMIT='1')
    out = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix='ioffice_ocr_') as tmp:
        pdf = os.path.join(tmp, 'in.pdf')
        with open(pdf, 'wb') as f:
            f.write(sys.stdin.buffer.read())
        for page in range(1, pages + 1):
            left = deadline - time.monotonic()
            if left <= 1 or out.tell() >= limit:
                break
            image = os.path.join(tmp, 'page')
            try:
                r = subprocess.run([PDFTOPPM, '-q', '-r', DPI, '-gray', '-png', '-singlefile',
                                    '-f', str(page), '-l', str(page), pdf, image],
                                   capture_output=True, timeout=left)
            except subprocess.TimeoutExpired:
                break
            if r.returncode != 0 or not os.path.exists(image + '.png'):
                if page == 1:
                    return 1    # not a PDF poppler can read
                break           # past the last page
            left = deadline - time.monotonic()
            if left <= 1:
                break
            try:
                r = subprocess.run([tesseract, image + '.png', 'stdout', '-l', langs, '--psm', '3'],
                                   capture_output=True, timeout=left, env=env)
            except subprocess.TimeoutExpired:
                break
            os.unlink(image + '.png')
            if r.returncode != 0:
                return 1
            out.write(r.stdout)
            out.write(b'\n')
    sys.stdout.buffer.write(out.getvalue()[:limit])
    return 0


def main():
    kind, limit = sys.argv[1], int(sys.argv[2])
    if kind == 'ocr':
        return ocr(limit, int(sys.argv[3]), float(sys.argv[4]))
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

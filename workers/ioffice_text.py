#!/usr/bin/python3
"""The text of a Word (docx, doc) or Excel (xlsx, xls) file, for search().

Run by the signing worker (workers/text_jobs.c) under the PDF helper's
limits (address space, CPU, wall clock), never in a server process:
    python3 -I ioffice_text.py docx|xlsx|doc|xls MAX_BYTES  < file  > text
Writes at most MAX_BYTES of UTF-8 text (paragraphs and cells one a line);
reads at most 8 times that of each part's XML, so that a zip bomb costs no
more.  No XML parser (entities, DTDs): the text runs are taken by pattern
and their five predefined entities and character references decoded.
Exit status 1: not a file of that kind it can read.

The binary formats of Word 97-2003 (doc) and Excel 97-2003 (xls) are read
by LibreOffice (soffice.bin, headless, a profile of its own in a fresh
temporary directory, macros never run), converting to UTF-8 text and to
CSV of every sheet.  It inherits this process's limits (address space, CPU
seconds) and dies with it (PR_SET_PDEATHSIG): when the worker kills this
process at ioffice.pdf_helper_timeout, soffice goes too.  catdoc and
antiword would be lighter, but neither is maintained upstream and both
parse the same hostile format in C; LibreOffice is already the converter's.
"""
import ctypes
import glob
import html
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile

SOFFICE = '/usr/lib/libreoffice/program/soffice.bin'
TARGET = {
    'doc': 'txt:Text (encoded):UTF8',
    # separator, quote, UTF-8, first line; ..., -1: every sheet, a file each
    'xls': 'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1',
}

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


def die_with_parent():
    # soffice ends when this process does (killed at the worker's deadline)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def legacy(kind, data, limit):
    """The text of a doc or xls file by LibreOffice, or None."""
    work = tempfile.mkdtemp(prefix='ioffice_text_')
    try:
        src = os.path.join(work, 'in.' + kind)
        outdir = os.path.join(work, 'out')
        with open(src, 'wb') as f:
            f.write(data)
        env = dict(os.environ, HOME=work)
        # a new profile makes soffice.bin exit with 81 once it is written
        for attempt in (1, 2):
            r = subprocess.run(
                [SOFFICE, '--headless', '--invisible', '--norestore', '--nologo', '--nodefault',
                 '--nolockcheck', '--nofirststartwizard',
                 '-env:UserInstallation=file://' + os.path.join(work, 'profile'),
                 '--convert-to', TARGET[kind], '--outdir', outdir, src],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=env, cwd=work, preexec_fn=die_with_parent)
            if r.returncode != 81:
                break
        outputs = sorted(glob.glob(os.path.join(outdir, '*')))
        if r.returncode != 0 or not outputs:
            return None
        out = io.BytesIO()
        for name in outputs:
            with open(name, 'rb') as f:
                out.write(f.read(limit - out.tell()).lstrip(b'\xef\xbb\xbf'))
            out.write(b'\n')
            if out.tell() >= limit:
                break
        return out.getvalue()[:limit]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    kind, limit = sys.argv[1], int(sys.argv[2])
    if kind in TARGET:
        text = legacy(kind, sys.stdin.buffer.read(), limit)
        if text is None:
            return 1
        sys.stdout.buffer.write(text)
        return 0
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

#!/usr/bin/python3
# ioffice_convert.py: the converter of Word and Excel files to PDF, run by
# the ioffice signing worker (workers/converter.c) as a helper process of its
# own, never inside a server process: LibreOffice parses files that came
# from outside, and a crash here costs one failed job, not a server restart.
#
# It keeps one LibreOffice (soffice.bin, headless, with a private profile)
# running between files and drives it through UNO (python3-uno): starting
# soffice costs seconds, a conversion through a running one a fraction of a
# second.  soffice is started at the first request, and again after it died.
#
# Protocol, one line each way, fields separated by tabs:
#   worker -> helper:  <source path> TAB <output path> TAB <original name>
#                      [TAB text]   (the file's text for search, not a PDF)
#   helper -> worker:  soffice TAB <pid>        (soffice is up; then, per file:)
#                      ok TAB <pid>             (the PDF, or the text, is at the output path)
#                      error TAB <reason>
# The worker enforces the time limit: it kills this process's whole process
# group (this script and soffice) when a file takes too long, and starts it
# again for the next file.  End of input: soffice is closed, the script ends.
#
# The text of a legacy Word (doc) or Excel (xls) file for search() is read
# here too (workers/convert_jobs.c), by the same running soffice: UTF-8 text
# of a text document, CSV of each sheet of a spreadsheet, one after another.
# The signer never waits for LibreOffice (starting it costs seconds).
#
# Usage: ioffice_convert.py <work directory>; the profile is <dir>/profile.
import glob
import os
import shutil
import subprocess
import sys
import time

try:
    import uno
    from com.sun.star.beans import PropertyValue
    from com.sun.star.connection import NoConnectException
    UNO_MISSING = None
except ImportError as e:
    UNO_MISSING = 'this Python cannot import uno (install python3-uno, or set ioffice.convert_python): %s' % e

SOFFICE_CANDIDATES = ('/usr/lib/libreoffice/program/soffice.bin',)
START_TIMEOUT = 60
BOM = b'\xef\xbb\xbf'


class SofficeRestart(Exception):
    pass


def prop(name, value):
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def say(*fields):
    line = '\t'.join(str(f).replace('\t', ' ').replace('\n', ' ') for f in fields)
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


class Office:
    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.desktop = None
        self.pipe = 'ioffice_convert_%d' % os.getpid()

    def binary(self):
        for b in SOFFICE_CANDIDATES:
            if os.access(b, os.X_OK):
                return b
        return 'soffice'

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        # a new profile makes soffice.bin exit with 81 once it is written
        # (the soffice script's oosplash starts it again): so do we
        for attempt in (1, 2):
            try:
                return self.start_once()
            except SofficeRestart:
                if attempt == 2:
                    raise RuntimeError('soffice asked to be restarted twice at start')

    def start_once(self):
        profile = os.path.join(self.workdir, 'profile')
        os.makedirs(profile, exist_ok=True)
        url = 'pipe,name=%s;urp;StarOffice.ComponentContext' % self.pipe
        # soffice.bin itself rather than the soffice script and oosplash:
        # one process, whose pid is the one reported
        self.proc = subprocess.Popen(
            [self.binary(), '--headless', '--invisible', '--norestore', '--nologo',
             '--nodefault', '--nolockcheck', '--nofirststartwizard',
             '-env:UserInstallation=' + uno.systemPathToFileUrl(profile),
             '--accept=' + url + ';'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.workdir, 'soffice.log'), 'ab'))
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            'com.sun.star.bridge.UnoUrlResolver', local)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                ctx = resolver.resolve('uno:' + url)
                break
            except NoConnectException:
                if not self.alive():
                    if self.proc.returncode == 81:
                        raise SofficeRestart()
                    raise RuntimeError('soffice exited at start (code %s)' % self.proc.returncode)
                if time.monotonic() > deadline:
                    raise RuntimeError('soffice did not start within %d s' % START_TIMEOUT)
                time.sleep(0.05)
        self.desktop = ctx.ServiceManager.createInstanceWithContext(
            'com.sun.star.frame.Desktop', ctx)
        say('soffice', self.proc.pid)

    def stop(self):
        if self.alive():
            try:
                self.desktop.terminate()
            except Exception:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.desktop = None

    def load(self, source):
        if not self.alive():
            self.stop()
            self.start()
        # never run macros, never update links (the file came from outside)
        doc = self.desktop.loadComponentFromURL(
            uno.systemPathToFileUrl(source), '_blank', 0,
            (prop('Hidden', True), prop('ReadOnly', True),
             prop('MacroExecutionMode', 0), prop('UpdateDocMode', 0),
             prop('Silent', True)))
        if doc is None:
            raise RuntimeError('LibreOffice could not open the file')
        return doc

    def extract(self, source, output):
        doc = self.load(source)
        try:
            if doc.supportsService('com.sun.star.sheet.SpreadsheetDocument'):
                # CSV (comma, double quote, UTF-8) of every sheet (-1), each
                # a file <stem>-<sheet name>.csv in a directory of its own
                sheets = output + '.sheets'
                shutil.rmtree(sheets, ignore_errors=True)
                os.makedirs(sheets)
                try:
                    doc.storeToURL(uno.systemPathToFileUrl(os.path.join(sheets, 's.csv')),
                                   (prop('FilterName', 'Text - txt - csv (StarCalc)'),
                                    prop('FilterOptions',
                                         '44,34,76,1,,0,false,true,false,false,false,-1'),
                                    prop('Overwrite', True)))
                    with open(output, 'wb') as out:
                        for part in sorted(glob.glob(os.path.join(sheets, '*'))):
                            with open(part, 'rb') as f:
                                out.write(f.read().lstrip(BOM))
                            out.write(b'\n')
                finally:
                    shutil.rmtree(sheets, ignore_errors=True)
            elif doc.supportsService('com.sun.star.text.TextDocument'):
                doc.storeToURL(uno.systemPathToFileUrl(output),
                               (prop('FilterName', 'Text (encoded)'),
                                prop('FilterOptions', 'UTF8'), prop('Overwrite', True)))
                with open(output, 'rb') as f:
                    body = f.read()
                if body.startswith(BOM):
                    with open(output, 'wb') as f:
                        f.write(body[len(BOM):])
            else:
                raise RuntimeError('the file is neither a text document nor a spreadsheet')
        finally:
            try:
                doc.close(True)
            except Exception:
                pass

    def convert(self, source, output):
        doc = self.load(source)
        try:
            if doc.supportsService('com.sun.star.sheet.SpreadsheetDocument'):
                pdf_filter = 'calc_pdf_Export'
            elif doc.supportsService('com.sun.star.text.TextDocument'):
                pdf_filter = 'writer_pdf_Export'
            else:
                raise RuntimeError('the file is neither a text document nor a spreadsheet')
            doc.storeToURL(uno.systemPathToFileUrl(output),
                           (prop('FilterName', pdf_filter), prop('Overwrite', True)))
        finally:
            try:
                doc.close(True)
            except Exception:
                pass


def test_hook(name):
    # tests only (tests/t/022_conversion.pl): a file whose name contains the
    # value of IOFFICE_CONVERT_TEST_HANG makes the conversion hang; and
    # (tests/t/047_extraction_converter.pl) IOFFICE_CONVERT_TEST_SLOW=
    # <part of a name>:<seconds> makes such a file take that long more
    hang = os.environ.get('IOFFICE_CONVERT_TEST_HANG')
    if hang and hang in name:
        time.sleep(3600)
    slow = os.environ.get('IOFFICE_CONVERT_TEST_SLOW', '').rpartition(':')
    if slow[0] and slow[0] in name:
        time.sleep(float(slow[2]))


def main():
    workdir = sys.argv[1]
    office = Office(workdir)
    for line in sys.stdin:
        fields = line.rstrip('\n').split('\t')
        if len(fields) not in (3, 4) or (len(fields) == 4 and fields[3] != 'text'):
            say('error', 'bad request')
            continue
        source, output, name = fields[:3]
        text = len(fields) == 4
        if UNO_MISSING:
            say('error', UNO_MISSING)
            continue
        try:
            test_hook(name)
            if text:
                office.extract(source, output)
            else:
                office.convert(source, output)
            if not os.path.exists(output) or (not text and os.path.getsize(output) == 0):
                raise RuntimeError('LibreOffice wrote no %s' % ('text' if text else 'PDF'))
            say('ok', office.proc.pid)
        except Exception as e:
            reason = getattr(e, 'Message', None) or str(e) or type(e).__name__
            say('error', '%s: %s' % (type(e).__name__, reason))
            # soffice may be in a bad state after a failure: a dead one is
            # started again at the next file
    office.stop()


if __name__ == '__main__':
    main()

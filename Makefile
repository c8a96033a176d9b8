# PGXS build of the ioffice extension.
EXTENSION = ioffice
MODULE_big = ioffice
OBJS = \
	extension/ioffice.o \
	extension/spi_util.o \
	extension/actor.o \
	extension/audit.o \
	extension/filetype.o \
	extension/files.o \
	extension/jsonb_util.o \
	extension/workflow_rules.o \
	extension/guards.o \
	extension/effects.o \
	extension/registers.o \
	extension/act.o \
	extension/engine_scope.o \
	extension/delivery.o \
	extension/audit_verify.o \
	extension/audit_proof.o \
	extension/audit_sign.o \
	triggers/audit_triggers.o \
	extension/export.o \
	extension/trail_export.o \
	extension/access_log.o \
	extension/register_export.o \
	extension/case_file_export.o \
	extension/report_export.o \
	triggers/rule_triggers.o \
	triggers/trigger_util.o \
	extension/certificates.o \
	extension/calendar.o \
	workers/worker.o \
	workers/sign_jobs.o \
	workers/audit_jobs.o \
	workers/count_jobs.o \
	workers/archive_jobs.o \
	workers/reminder_jobs.o \
	workers/signer.o \
	workers/hsm_key.o \
	workers/convert_jobs.o \
	workers/converter.o \
	workers/pdf_sign.o \
	workers/timestamp.o \
	extension/pdf_helper.o \
	extension/edxml.o \
	extension/token_signing.o \
	extension/outbox.o \
	extension/dossier.o \
	extension/import_issued.o \
	extension/dates.o \
	extension/bytes.o \
	extension/search.o \
	extension/search_export.o \
	workers/text_jobs.o \
	workers/case_file_pdf_jobs.o \
	workers/retention_jobs.o \
	workers/outbox_delivery.o \
	workers/remote_signing.o \
	workers/http_calls.o \
	workers/axis_transport.o \
	workers/edxml_exchange.o

# The install script of the current version is built from its parts, one
# concern per file, in the order of their numbers; each upgrade script is a
# file of its own, carrying every schema change since the version it starts at.
DATA_built = sql/ioffice--0.2.sql
DATA = sql/ioffice--0.1--0.2.sql
# the converter helper the signing worker runs (workers/converter.c)
DATA += workers/ioffice_convert.py
# the text of docx and xlsx files for search (workers/text_jobs.c)
DATA += workers/ioffice_text.py
# search results as a Word document (extension/export.c)
DATA += helpers/ioffice_docx.py
SQL_PARTS = $(sort $(wildcard $(srcdir)/sql/parts/*.sql))

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/extension -I$(srcdir)/workers
# libxlsxwriter for trail_export() and register_export(); its .pc also names zlib
PG_CPPFLAGS += $(shell pkg-config --cflags xlsxwriter 2>/dev/null)
SHLIB_LINK += $(shell pkg-config --libs xlsxwriter 2>/dev/null || echo -lxlsxwriter)
# OpenSSL: the signer and verify() (CMS, X.509)
SHLIB_LINK += -lcrypto
# libcurl: the worker's HTTP outbox (multi interface)
SHLIB_LINK += $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
# PostgreSQL's own headers are not -Wextra clean for these three; everything
# else -Wextra reports is an error in our code.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers

# no JIT bitcode: it would need clang on every machine that builds us
override with_llvm = no

# rebuild a C file when a header it includes changes (PGXS keeps .deps/)
override autodepend = yes

# Tests, as PostgreSQL's own: "make installcheck" runs pg_regress, the
# isolation tester and TAP against the installed extension, each suite in a
# throwaway instance of its own (--temp-instance) with the library preloaded
# (--temp-config); the installcheck-regress, -isolation and -tap targets run
# one suite.  The lists are the schedules' (one test a line, in order).
# scripts/test drives these targets (as the postgres OS user when root,
# since initdb refuses root) and adds the faketime runs.
TEST_CONF = $(srcdir)/tests/ioffice.conf
REGRESS = $(shell sed -n 's/^test: *//p' $(srcdir)/tests/schedule)
REGRESS_OPTS = --inputdir=$(srcdir)/tests --temp-instance=$(CURDIR)/tmp_check_regress \
	--temp-config=$(TEST_CONF) --encoding=UTF8 --no-locale
ISOLATION = $(shell sed -n 's/^test: *//p' $(srcdir)/tests/isolation_schedule)
ISOLATION_OPTS = --inputdir=$(srcdir)/tests --temp-instance=$(CURDIR)/tmp_check_iso \
	--temp-config=$(TEST_CONF) --encoding=UTF8 --no-locale
TAP_TESTS = 1
PROVE_TESTS = $(or $(TAP),tests/t/*.pl)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The PDF helper: every PDF is read and written by this program, in a
# process of its own with limits (extension/pdf_helper.c), never inside a
# backend or the worker.  C++ against PoDoFo (Debian libpodofo-dev, LGPL),
# which writes; poppler's C++ API (libpoppler-cpp-dev, GPL) finds words on
# a page: the signature block, the blanks of the number and the date.
PDF_HELPER = helpers/ioffice_pdf
PODOFO_CFLAGS = $(shell pkg-config --cflags libpodofo 2>/dev/null || echo -I/usr/include/podofo)
PODOFO_LIBS = $(shell pkg-config --libs libpodofo 2>/dev/null || echo -lpodofo)
POPPLER_CPP_CFLAGS = $(shell pkg-config --cflags poppler-cpp 2>/dev/null)
POPPLER_CPP_LIBS = $(shell pkg-config --libs poppler-cpp 2>/dev/null || echo -lpoppler-cpp)
all: $(PDF_HELPER)
$(PDF_HELPER): helpers/ioffice_pdf.cpp
	$(CXX) -O2 -Wall -Wextra -Werror -o $@ $< $(PODOFO_CFLAGS) $(POPPLER_CPP_CFLAGS) \
		$(PODOFO_LIBS) $(POPPLER_CPP_LIBS)
install: install-pdf-helper
.PHONY: install-pdf-helper
install-pdf-helper: $(PDF_HELPER) installdirs
	$(INSTALL_PROGRAM) $(PDF_HELPER) '$(DESTDIR)$(pkglibdir)/ioffice_pdf'
clean: clean-pdf-helper
.PHONY: clean-pdf-helper
clean-pdf-helper:
	rm -f $(PDF_HELPER)

# The edXML helper: every edXML package from outside is read by this
# program, in a process of its own with the PDF helper's limits
# (extension/edxml.c), and packages are signed by it with the key file the
# worker names, or the seal's key in an HSM (helpers/edxml_hsm.c).  libxml2 parses and prints; libxmlsec1 (Debian
# libxmlsec1-dev, OpenSSL backend) makes and checks the XML-DSig signature.
EDXML_HELPER = helpers/ioffice_edxml
XMLSEC_CFLAGS = $(shell pkg-config --cflags xmlsec1-openssl)
XMLSEC_LIBS = $(shell pkg-config --libs xmlsec1-openssl)
all: $(EDXML_HELPER)
$(EDXML_HELPER): helpers/ioffice_edxml.c helpers/edxml_hsm.c helpers/edxml_hsm.h
	$(CC) -O2 -Wall -Wextra -Werror -o $@ helpers/ioffice_edxml.c helpers/edxml_hsm.c $(XMLSEC_CFLAGS) $(XMLSEC_LIBS)
install: install-edxml-helper
.PHONY: install-edxml-helper
install-edxml-helper: $(EDXML_HELPER) installdirs
	$(INSTALL_PROGRAM) $(EDXML_HELPER) '$(DESTDIR)$(pkglibdir)/ioffice_edxml'
clean: clean-edxml-helper
.PHONY: clean-edxml-helper
clean-edxml-helper:
	rm -f $(EDXML_HELPER)

# (after the include, which empties it)
PROVE_FLAGS = -I tests/t -v

.PHONY: installcheck-regress installcheck-isolation installcheck-tap
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

sql/ioffice--0.2.sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@


.PHONY: test demo
test:
	bash scripts/test
demo:
	bash scripts/demo

/*-------------------------------------------------------------------------
 * ioffice_pdf.cpp
 *	  The PDF helper: the only code of ioffice that parses or writes a PDF.
 *
 * PDFs come from outside (other agencies, citizens), and a PDF parser is a
 * large surface: a crash inside a backend or the background worker (both
 * postmaster children) would restart every backend of the server.  So the
 * worker and verify() exec this program with limits on its address space
 * and CPU time and a wall-clock timeout (workers/pdf_helper.c); whatever a
 * hostile file does to it costs one job or one verify() call.
 *
 * It holds no key and never touches the database: it reads the PDF on
 * stdin and answers on stdout.
 *
 *   ioffice_pdf prepare [--name N] [--reason R] [--location L] [--time T]
 *                       [--room BYTES]
 *     Appends an incremental update with a new signature field (an
 *     invisible widget on page 1), a signature dictionary with /SubFilter
 *     /ETSI.CAdES.detached, /M, /ByteRange and a /Contents placeholder of
 *     BYTES bytes (hex zeros).  Answers "ok <b0> <b1> <b2> <b3> <length>\n"
 *     then the prepared file's <length> bytes.  The caller signs the bytes
 *     of the /ByteRange and writes the CMS's hex into the placeholder.
 *
 *   ioffice_pdf serve CPU_SECONDS
 *     Many "prepare" requests in one process, for the worker (see serve()),
 *     which may carry a PNG: the signer's signature image, centred on a
 *     given point or in the usual place of the signature block, or the
 *     agency's seal at its real size over the left third of the latest
 *     visible signature (place()).
 *
 *   ioffice_pdf signatures
 *     One line per signature dictionary found:
 *     "sig\t<revision>\t<b0> <b1> <b2> <b3>\t<subfilter>\t<M>\t<name>\t
 *      <after>\t<hex of /Contents>" where revision counts the file's %%EOF
 *     markers up to the end of the signed range, and after is "none" (the
 *     signature covers the whole file), "signatures" (what was appended
 *     later only adds signatures, annotations and form fields) or
 *     "content: <what>" (a later revision changed pages or other objects).
 *     Then "end <count>".
 *
 * Errors: "error\t<message>" and exit status 2 when the input is not a PDF
 * this library can read; 1 for anything else.
 *
 * For tests only: when IOFFICE_PDF_HELPER_TESTING=1, a file containing the
 * comment "%ioffice-test-crash" makes it abort, "-hang" loop forever,
 * "-eat" allocate without end: the limits and the containment are proved
 * with the real program.
 *-------------------------------------------------------------------------
 */
#include <podofo/podofo.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <vector>
#include <sys/resource.h>
#include <unistd.h>

using namespace PoDoFo;

/* the whole of stdin */
static std::string
read_stdin()
{
	std::string data;
	char		buf[65536];
	ssize_t		n;

	while ((n = read(0, buf, sizeof(buf))) != 0)
	{
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			throw std::runtime_error("cannot read the input");
		}
		data.append(buf, n);
	}
	return data;
}

static void
write_all(const char *p, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(1, p, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			exit(1);
		}
		p += n;
		len -= n;
	}
}

static void
test_hooks(const std::string &pdf)
{
	const char *t = getenv("IOFFICE_PDF_HELPER_TESTING");

	if (t == NULL || strcmp(t, "1") != 0)
		return;
	if (pdf.find("%ioffice-test-crash") != std::string::npos)
		abort();
	if (pdf.find("%ioffice-test-hang") != std::string::npos)
		for (volatile unsigned long i = 0;; i++)
			;
	if (pdf.find("%ioffice-test-eat") != std::string::npos)
		for (;;)
		{
			char	   *p = (char *) malloc(16 << 20);

			if (p == NULL)
				throw std::bad_alloc();
			memset(p, 1, 16 << 20);
		}
}

/* the number of "%%EOF" markers in pdf[0, end) */
static int
revisions_before(const std::string &pdf, size_t end)
{
	int			n = 0;
	size_t		at = 0;

	while ((at = pdf.find("%%EOF", at)) != std::string::npos && at < end)
	{
		n++;
		at += 5;
	}
	return n;
}

static std::string
one_line(const std::string &s)
{
	std::string out;

	for (char c : s)
		out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
	return out;
}

/* ------------------------------------------------------------------------
 * prepare
 * ------------------------------------------------------------------------
 */
struct PrepareOptions
{
	std::string name;
	std::string reason;
	std::string location;
	time_t		when = time(NULL);
	size_t		room = 16384;
	/* the visible signature: an image (PNG), and for a seal its diameter */
	std::string image;
	double		seal_mm = 0;
	int			page = 0;		/* 1-based; 0: not given */
	double		x = 0;			/* the image's centre, points from bottom left */
	double		y = 0;
};

/* where the widget goes: a page and a rectangle; zero size: invisible */
struct Placement
{
	int			page = 0;		/* 0-based */
	PdfRect		rect = PdfRect(0, 0, 0, 0);
};

/* the page index of a page object, or -1 */
static int
page_index(PdfMemDocument &doc, const PdfReference &ref)
{
	for (int i = 0; i < doc.GetPageCount(); i++)
		if (doc.GetPage(i)->GetObject()->Reference() == ref)
			return i;
	return -1;
}

/*
 * The visible signature image of the latest earlier signature: the widget
 * of a signature field with the highest object number and a non-empty
 * /Rect (the leader's, when the clerk seals).
 */
static bool
latest_visible_signature(PdfMemDocument &doc, Placement &found)
{
	bool		any = false;
	unsigned long best = 0;

	for (PdfObject *o : doc.GetObjects())
	{
		if (!o->IsDictionary())
			continue;
		const PdfDictionary &d = o->GetDictionary();
		const PdfObject *ft = d.GetKey("FT");
		const PdfObject *rect = d.GetKey("Rect");
		const PdfObject *pg = d.GetKey("P");

		if (ft == NULL || !ft->IsName() || ft->GetName() != PdfName("Sig") ||
			rect == NULL || !rect->IsArray() || rect->GetArray().size() != 4 ||
			pg == NULL || !pg->IsReference())
			continue;
		PdfRect r(rect->GetArray());

		if (r.GetWidth() <= 0 || r.GetHeight() <= 0 || o->Reference().ObjectNumber() < best)
			continue;
		int			idx = page_index(doc, pg->GetReference());

		if (idx < 0)
			continue;
		best = o->Reference().ObjectNumber();
		found.page = idx;
		found.rect = r;
		any = true;
	}
	return any;
}

/*
 * Where the image goes (Decree 30, Appendix I, II.7d and 8): a person's
 * signature image 50 pt high, centred on the given point, or else in the
 * signature block's usual place on the last page (right half, a quarter up
 * from the bottom); a seal at its real diameter, its right edge a third of
 * the way into the latest visible signature image, centred on its height.
 */
static Placement
place(PdfMemDocument &doc, const PrepareOptions &opt, double img_w, double img_h)
{
	Placement	p;
	int			pages = doc.GetPageCount();

	if (opt.image.empty() || img_w <= 0 || img_h <= 0)
		return p;
	if (opt.seal_mm > 0)
	{
		double		d = opt.seal_mm * 72.0 / 25.4;
		Placement	sig;

		if (latest_visible_signature(doc, sig))
		{
			p.page = sig.page;
			p.rect = PdfRect(sig.rect.GetLeft() + sig.rect.GetWidth() / 3 - d,
							 sig.rect.GetBottom() + sig.rect.GetHeight() / 2 - d / 2, d, d);
			return p;
		}
		img_h = d;
		img_w = d;
	}
	else
	{
		img_w = img_w * 50.0 / img_h;
		img_h = 50.0;
	}
	p.page = (opt.page >= 1 && opt.page <= pages) ? opt.page - 1 : pages - 1;
	PdfRect		box = doc.GetPage(p.page)->GetPageSize();
	double		cx = opt.page >= 1 ? opt.x : box.GetLeft() + box.GetWidth() * 0.72;
	double		cy = opt.page >= 1 ? opt.y : box.GetBottom() + box.GetHeight() * 0.25;

	p.rect = PdfRect(cx - img_w / 2, cy - img_h / 2, img_w, img_h);
	return p;
}

/* the next free field name Signature<n> */
static std::string
new_field_name(PdfMemDocument &doc)
{
	int			n = 1;

	for (PdfObject *o : doc.GetObjects())
	{
		if (o->IsDictionary() && o->GetDictionary().HasKey("FT") &&
			o->GetDictionary().HasKey("T"))
			n++;
	}
	return "Signature" + std::to_string(n);
}

static int
prepare(const std::string &pdf, const PrepareOptions &opt)
{
	PdfMemDocument doc;
	PdfRefCountedBuffer out;

	doc.LoadFromBuffer(pdf.data(), (long) pdf.size(), true);
	if (doc.GetPageCount() < 1)
		throw PdfError(ePdfError_PageNotFound);
	if (doc.GetEncrypted())
	{
		fputs("error\tthe PDF is encrypted\n", stdout);
		return 2;
	}

	{
		PdfOutputDevice dev(&out);
		PdfSignOutputDevice signer(&dev);
		PdfAcroForm *form = doc.GetAcroForm(true, ePdfAcroFormDefaultAppearance_None);
		PdfImage   *img = NULL;
		PdfXObject *look = NULL;
		Placement	where;
		PdfSignatureField *field;
		PdfObject  *sig;
		PdfArray	range;

		/* signatures exist and the file is append-only (PDF 32000 12.7.2) */
		form->GetObject()->GetDictionary().AddKey("SigFlags", PdfObject((pdf_int64) 3));
		signer.SetSignatureSize(opt.room);
		if (!opt.image.empty())
		{
			img = new PdfImage(&doc);
			img->LoadFromPngData((const unsigned char *) opt.image.data(), (pdf_long) opt.image.size());
			where = place(doc, opt, img->GetWidth(), img->GetHeight());
		}
		field = new PdfSignatureField(doc.GetPage(where.page), where.rect, &doc);
		if (img != NULL && where.rect.GetWidth() > 0)
		{
			PdfPainter	painter;

			/* the widget's appearance: the image filling its rectangle */
			look = new PdfXObject(PdfRect(0, 0, where.rect.GetWidth(), where.rect.GetHeight()), &doc);
			painter.SetPage(look);
			painter.DrawImage(0, 0, img, where.rect.GetWidth() / img->GetWidth(),
							  where.rect.GetHeight() / img->GetHeight());
			painter.FinishPage();
			field->SetAppearanceStream(look);
			/* printed, as the paper copy shows it */
			field->GetWidgetAnnotation()->SetFlags(ePdfAnnotationFlags_Print);
		}
		field->SetFieldName(PdfString(new_field_name(doc)));
		if (!opt.reason.empty())
			field->SetSignatureReason(PdfString((const pdf_utf8 *) opt.reason.c_str()));
		if (!opt.location.empty())
			field->SetSignatureLocation(PdfString((const pdf_utf8 *) opt.location.c_str()));
		field->SetSignatureDate(PdfDate(opt.when));
		field->SetSignature(*signer.GetSignatureBeacon());
		sig = field->GetSignatureObject();
		/* PAdES (ETSI EN 319 142-1): a CAdES detached CMS */
		sig->GetDictionary().AddKey("SubFilter", PdfName("ETSI.CAdES.detached"));
		if (!opt.name.empty())
			sig->GetDictionary().AddKey("Name", PdfString((const pdf_utf8 *) opt.name.c_str()));

		doc.WriteUpdate(&signer, true);
		if (!signer.HasSignaturePosition())
			throw PdfError(ePdfError_InternalLogic, __FILE__, __LINE__,
						   "the signature placeholder was not written");
		range = signer.AdjustByteRange();
		signer.Flush();
		delete field;
		delete look;
		delete img;

		if (range.size() != 4)
			throw PdfError(ePdfError_InternalLogic);
		/* the update appends: the input is the prefix, byte for byte */
		if (out.GetSize() <= pdf.size() || memcmp(out.GetBuffer(), pdf.data(), pdf.size()) != 0)
			throw PdfError(ePdfError_InternalLogic, __FILE__, __LINE__,
						   "the update does not begin with the input");
		printf("ok %lld %lld %lld %lld %zu\n",
			   (long long) range[0].GetNumber(), (long long) range[1].GetNumber(),
			   (long long) range[2].GetNumber(), (long long) range[3].GetNumber(),
			   (size_t) dev.GetLength());
		fflush(stdout);
		write_all(out.GetBuffer(), dev.GetLength());
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * signatures
 * ------------------------------------------------------------------------
 */

/* The object's text, and for a stream its raw data too */
static std::string
object_text(const PdfObject *o)
{
	std::string s;

	o->ToString(s, ePdfWriteMode_Compact);
	if (o->HasStream())
	{
		char	   *buf = NULL;
		pdf_long	len = 0;

		const_cast<PdfObject *>(o)->GetStream()->GetCopy(&buf, &len);
		s.append("\nstream\n");
		s.append(buf, len);
		podofo_free(buf);
	}
	return s;
}

static std::string
type_of(const PdfObject *o)
{
	if (!o->IsDictionary())
		return "";
	const PdfObject *t = o->GetDictionary().GetKey("Type");

	if (t && t->IsName())
		return t->GetName().GetName();
	if (o->GetDictionary().HasKey("FT"))
		return "Field";
	return "";
}

/* the dictionary without the keys a later signature may change */
static std::string
without_keys(const PdfObject *o, const std::vector<const char *> &keys)
{
	PdfObject	copy(*o);

	for (const char *k : keys)
		copy.GetDictionary().RemoveKey(k);
	std::string s;

	copy.ToString(s, ePdfWriteMode_Compact);
	return s;
}

/*
 * What the revisions after a signature did: compare every object of the
 * whole file with the same object of the signed revision.  New objects
 * are allowed unless they are pages; changed objects are allowed when they
 * are annotations, form fields or signature dictionaries, the form, the
 * document information, or a page or the catalog whose change is only in
 * /Annots (pages) or /AcroForm, /Perms, /DSS (catalog).
 */
static std::string
changes_after(PdfMemDocument &full, const std::string &pdf, size_t signed_end)
{
	PdfMemDocument old;
	const PdfObject *info = full.GetTrailer()->GetDictionary().GetKey("Info");

	old.LoadFromBuffer(pdf.data(), (long) signed_end, false);
	for (PdfObject *o : full.GetObjects())
	{
		PdfObject  *was = old.GetObjects().GetObject(o->Reference());
		std::string type = type_of(o);

		if (was == NULL)
		{
			if (type == "Page" || type == "Pages")
				return "content: a page was added";
			continue;
		}
		if (type == "XRef" || type == "ObjStm")
			continue;
		if (object_text(o) == object_text(was))
			continue;
		if (type == "Annot" || type == "Field" || type == "Sig" || type == "DocTimeStamp")
			continue;
		if (info && info->IsReference() && info->GetReference() == o->Reference())
			continue;
		if (o->IsArray() && was->IsArray())
			continue;			/* an /Annots or /Fields array, checked below */
		if (type == "Page" && type_of(was) == "Page" &&
			without_keys(o, {"Annots"}) == without_keys(was, {"Annots"}))
			continue;
		if (type == "Catalog" && type_of(was) == "Catalog" &&
			without_keys(o, {"AcroForm", "Perms", "DSS"}) == without_keys(was, {"AcroForm", "Perms", "DSS"}))
			continue;
		if (o->IsDictionary() && o->GetDictionary().HasKey("Fields"))
			continue;			/* the form */
		return "content: object " + std::to_string(o->Reference().ObjectNumber()) +
			(type.empty() ? "" : " (" + type + ")") + " changed";
	}
	/* an /Annots or /Fields array that changed must still hold the old entries */
	return "signatures";
}

static std::string
hex(const std::string &s)
{
	static const char digits[] = "0123456789abcdef";
	std::string out;

	out.reserve(s.size() * 2);
	for (unsigned char c : s)
	{
		out += digits[c >> 4];
		out += digits[c & 15];
	}
	return out;
}

static std::string
string_of(const PdfDictionary &d, const char *key)
{
	const PdfObject *o = d.GetKey(key);

	if (o == NULL)
		return "";
	if (o->IsString() || o->IsHexString())
		return o->GetString().GetStringUtf8();
	if (o->IsName())
		return o->GetName().GetName();
	return "";
}

static int
signatures(const std::string &pdf)
{
	PdfMemDocument doc;
	int			count = 0;

	doc.LoadFromBuffer(pdf.data(), (long) pdf.size(), false);
	for (PdfObject *o : doc.GetObjects())
	{
		if (!o->IsDictionary())
			continue;
		const PdfDictionary &d = o->GetDictionary();
		const PdfObject *br = d.GetKey("ByteRange");
		const PdfObject *contents = d.GetKey("Contents");

		if (br == NULL || contents == NULL || !br->IsArray() ||
			!(contents->IsString() || contents->IsHexString()))
			continue;
		const PdfArray &a = br->GetArray();

		if (a.size() != 4)
			continue;
		long long	r[4];
		bool		ok = true;

		for (int i = 0; i < 4; i++)
		{
			if (!a[i].IsNumber())
				ok = false;
			else
				r[i] = a[i].GetNumber();
		}
		if (!ok || r[0] != 0 || r[1] < 0 || r[2] < r[1] || r[3] < 0 ||
			(unsigned long long) (r[2] + r[3]) > pdf.size())
		{
			printf("sig\t0\t-\t%s\t\t\tcontent: the byte range is out of the file\t\n",
				   one_line(string_of(d, "SubFilter")).c_str());
			count++;
			continue;
		}
		size_t		end = (size_t) (r[2] + r[3]);
		std::string after;

		if (end == pdf.size())
			after = "none";
		else
		{
			try
			{
				after = changes_after(doc, pdf, end);
			}
			catch (const PdfError &e)
			{
				after = std::string("content: the signed revision cannot be read (") +
					PdfError::ErrorMessage(e.GetError()) + ")";
			}
		}
		const PdfString &c = contents->GetString();
		std::string raw(c.GetString(), c.GetLength());

		printf("sig\t%d\t%lld %lld %lld %lld\t%s\t%s\t%s\t%s\t%s\n",
			   revisions_before(pdf, end), r[0], r[1], r[2], r[3],
			   one_line(string_of(d, "SubFilter")).c_str(),
			   one_line(string_of(d, "M")).c_str(),
			   one_line(string_of(d, "Name")).c_str(),
			   one_line(after).c_str(), hex(raw).c_str());
		count++;
	}
	printf("end %d\n", count);
	return 0;
}

/* one command on one PDF: its answer on stdout, and the status */
static int
run_one(const std::string &command, const std::string &pdf, const PrepareOptions &opt,
		bool *fatal)
{
	*fatal = false;
	try
	{
		test_hooks(pdf);
		if (command == "prepare")
			return prepare(pdf, opt);
		return signatures(pdf);
	}
	catch (const PdfError &e)
	{
		printf("error\tthe PDF cannot be read: %s\n", PdfError::ErrorMessage(e.GetError()));
		return 2;
	}
	catch (const std::bad_alloc &)
	{
		/* the heap may be in pieces: answer, then end (serve mode) */
		fputs("error\tout of memory\n", stdout);
		*fatal = true;
		return 1;
	}
	catch (const std::exception &e)
	{
		printf("error\t%s\n", e.what());
		return 1;
	}
}

/* a field of a serve request's header: up to the next tab */
static std::string
field(const std::string &line, size_t &at)
{
	size_t		tab = line.find('\t', at);
	std::string f = line.substr(at, tab == std::string::npos ? std::string::npos : tab - at);

	at = tab == std::string::npos ? line.size() : tab + 1;
	return f;
}

/*
 * serve: many requests, one process (the worker keeps it between jobs:
 * starting a process costs more than preparing a small PDF).  A request is
 * "prepare\t<length>\t<time>\t<room>\t<name>\t<reason>\t<image length>\t
 * <seal mm>\t<page>\t<x>\t<y>\n", <length> bytes of PDF, <image length> of PNG; the answer is what "prepare" prints, then "status <n>\n".  The
 * CPU limit is renewed per request (what it used so far plus the budget),
 * below the hard limit its parent set; the wall clock is the parent's.
 */
static int
serve(rlim_t budget)
{
	char		line[8192];

	while (fgets(line, sizeof(line), stdin) != NULL)
	{
		std::string header(line);
		size_t		at = 0;
		PrepareOptions opt;
		std::string command;
		size_t		len;
		std::string pdf;
		bool		fatal;
		int			status;
		struct rusage ru;
		struct rlimit rl;

		if (!header.empty() && header.back() == '\n')
			header.pop_back();
		command = field(header, at);
		len = (size_t) atoll(field(header, at).c_str());
		opt.when = (time_t) atoll(field(header, at).c_str());
		opt.room = (size_t) atoll(field(header, at).c_str());
		opt.name = field(header, at);
		opt.reason = field(header, at);
		size_t		image_len = (size_t) atoll(field(header, at).c_str());

		opt.seal_mm = atof(field(header, at).c_str());
		opt.page = atoi(field(header, at).c_str());
		opt.x = atof(field(header, at).c_str());
		opt.y = atof(field(header, at).c_str());
		if (command != "prepare" && command != "signatures")
			return 1;
		try
		{
			pdf.resize(len);
		}
		catch (const std::bad_alloc &)
		{
			return 1;
		}
		if (len > 0 && fread(&pdf[0], 1, len, stdin) != len)
			return 1;
		if (image_len > 16 << 20)
			return 1;
		opt.image.resize(image_len);
		if (image_len > 0 && fread(&opt.image[0], 1, image_len, stdin) != image_len)
			return 1;
		if (getrusage(RUSAGE_SELF, &ru) == 0 && getrlimit(RLIMIT_CPU, &rl) == 0)
		{
			rlim_t		used = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1;
			rlim_t		want = used + budget;

			rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max) ? want : rl.rlim_max;
			setrlimit(RLIMIT_CPU, &rl);
		}
		status = run_one(command, pdf, opt, &fatal);
		printf("status %d\n", status);
		fflush(stdout);
		if (fatal)
			return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	std::string command = argc > 1 ? argv[1] : "";
	PrepareOptions opt;
	bool		fatal;

	PdfError::EnableDebug(false);
	PdfError::EnableLogging(false);
	for (int i = 2; command != "serve" && i + 1 < argc; i += 2)
	{
		std::string k = argv[i];

		if (k == "--name")
			opt.name = argv[i + 1];
		else if (k == "--reason")
			opt.reason = argv[i + 1];
		else if (k == "--location")
			opt.location = argv[i + 1];
		else if (k == "--time")
			opt.when = (time_t) atoll(argv[i + 1]);
		else if (k == "--room")
			opt.room = (size_t) atoll(argv[i + 1]);
		else
		{
			fprintf(stdout, "error\tunknown option %s\n", argv[i]);
			return 1;
		}
	}
	if (command == "serve")
		return serve(argc > 2 && atoll(argv[2]) > 0 ? (rlim_t) atoll(argv[2]) : 30);
	if (command != "prepare" && command != "signatures")
	{
		fputs("error\tusage: ioffice_pdf prepare|signatures|serve < in.pdf\n", stdout);
		return 1;
	}
	try
	{
		return run_one(command, read_stdin(), opt, &fatal);
	}
	catch (const std::exception &e)
	{
		printf("error\t%s\n", e.what());
		return 1;
	}
}

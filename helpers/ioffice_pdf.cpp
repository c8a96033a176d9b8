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
 *                       [--room BYTES] [--image PNG | --seal PNG]
 *                       [--number NN --date YYYY-MM-DD] [--corner TEXT]
 *     Appends an incremental update with a new signature field (an
 *     invisible widget on page 1), a signature dictionary with /SubFilter
 *     /ETSI.CAdES.detached, /M, /ByteRange and a /Contents placeholder of
 *     BYTES bytes (hex zeros).  Answers "ok <b0> <b1> <b2> <b3> <length>
 *     [<note>]\n" then the prepared file's <length> bytes.  The caller signs
 *     the bytes of the /ByteRange and writes the CMS's hex into the
 *     placeholder.  With --number and --date the same update writes the
 *     number and the date into the blanks of page 1 (stamp_issue()), with
 *     --corner the lines of TEXT (0x1F between them) at its top right
 *     (stamp_corner()); the note says what was written.
 *
 *   ioffice_pdf serve CPU_SECONDS
 *     Many "prepare" requests in one process, for the worker (see serve()),
 *     which may carry a PNG: the signer's signature image, centred on a
 *     given point, or between the signer's title and name found on the
 *     last page, or else in the usual place of the signature block; or the
 *     agency's seal at its real size over the left third of the latest
 *     visible signature (place()).
 *
 * Words on a page are found with poppler's C++ API (page_words()), whose
 * layout is the one pdftotext shows; everything written is PoDoFo's.
 *
 *   ioffice_pdf mark --mark TEXT
 *     Appends an incremental update writing TEXT (one line) at the foot of
 *     every page: the download mark of a copy (mark()).  Answers
 *     "ok <length>\n" then the marked copy's <length> bytes.
 *
 *   ioffice_pdf table < spec,  ioffice_pdf book < spec and PDFs
 *     The search results as a PDF table; a case file as one PDF, its table
 *     of contents first (see table() and book()).
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
 *   dss (served only)
 *     Appends an incremental update with the Document Security Store (PAdES
 *     B-LT, ETSI EN 319 142-1 5.4): the catalog's /DSS with /Certs and /CRLs,
 *     streams of the DER certificates and revocation lists given after the
 *     PDF (room: the certificates' bytes, then the lists).  An existing
 *     /DSS keeps its entries; what it already holds is not added twice.
 *     Answers "ok 0 0 0 0 <length>\n" then the file's bytes.  In the
 *     "signatures" answer, a line "dss\t<certs>\t<crls>" (hex DER, comma
 *     separated) comes first when the file has one.
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
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-page.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
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
	/*
	 * the limit is on address space (RLIMIT_AS), which malloc() reaches
	 * whether the pages are touched or not: touching one byte of each
	 * block keeps it from being optimised away, touching them all would
	 * only spend the time a loaded machine does not give (the deadline
	 * then came first)
	 */
	if (pdf.find("%ioffice-test-eat") != std::string::npos)
		for (;;)
		{
			char	   *p = (char *) malloc(16 << 20);

			if (p == NULL)
				throw std::bad_alloc();
			*(volatile char *) p = 1;
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
	/*
	 * the issue stamp (organisation's signature at issue): the number, and
	 * the issue date's day, month and year as Decree 30 writes them, for
	 * the blanks of "Số:    /UBND-VP" and "ngày   tháng   năm"; empty: none
	 */
	std::string number;
	std::string day;
	std::string month;
	std::string year;
	/*
	 * a signature without image shown as text at the top right of page 1
	 * (an attachment in a file of its own, a copy): its lines, separated by
	 * 0x1F; empty: none
	 */
	std::string corner;
	/* the download mark (mark): one line at the foot of every page */
	std::string mark;
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

/* ------------------------------------------------------------------------
 * The page's words, read with poppler (its text layout is the one
 * pdftotext shows): where the signature block and the blanks are.
 * ------------------------------------------------------------------------
 */

/* a word and its box, points, origin top left of the crop box, as poppler gives them */
struct Word
{
	std::string text;
	double		x0,
				y0,
				x1,
				y1;
	double		size;			/* the font size */
	bool		bold;			/* its font's name says Bold, Italic */
	bool		italic;
};

static void
quiet(const std::string &, void *)
{
}

/* the words of page PAGE (0-based) of PDF; none when poppler cannot read it */
static std::vector<Word>
page_words(const std::string &pdf, int page)
{
	std::vector<Word> words;
	std::unique_ptr<poppler::document> doc(
		poppler::document::load_from_raw_data(pdf.data(), (int) pdf.size()));

	if (!doc || doc->is_locked() || page < 0 || page >= doc->pages())
		return words;
	std::unique_ptr<poppler::page> pg(doc->create_page(page));

	if (!pg)
		return words;
	for (const poppler::text_box &b : pg->text_list(poppler::page::text_list_include_font))
	{
		poppler::byte_array u = b.text().to_utf8();
		poppler::rectf r = b.bbox();
		Word		w;

		w.text.assign(u.begin(), u.end());
		w.x0 = r.x();
		w.y0 = r.y();
		w.x1 = r.x() + r.width();
		w.y1 = r.y() + r.height();
		w.size = b.get_font_size() > 0 ? b.get_font_size() : r.height() / 1.15;
		w.bold = b.get_font_name().find("Bold") != std::string::npos;
		w.italic = b.get_font_name().find("Italic") != std::string::npos ||
			b.get_font_name().find("Oblique") != std::string::npos;
		if (b.get_wmode() == poppler::text_box::horizontal_wmode && !w.text.empty())
			words.push_back(w);
	}
	return words;
}

/* b is on a's line: their middles within a third of a's height */
static bool
same_line(const Word &a, const Word &b)
{
	return fabs((a.y0 + a.y1) / 2 - (b.y0 + b.y1) / 2) < (a.y1 - a.y0) / 3;
}

/* the nearest word right of w on its line, within LIMIT points; NULL: none */
static const Word *
next_on_line(const std::vector<Word> &words, const Word &w, double limit)
{
	const Word *best = NULL;

	for (const Word &o : words)
		if (&o != &w && same_line(w, o) && o.x0 >= w.x1 - 0.5 && o.x0 - w.x1 <= limit &&
			(best == NULL || o.x0 < best->x0))
			best = &o;
	return best;
}

/* "Số:" whether its letters are composed or not */
static bool
is_word(const Word &w, const char *composed, const char *decomposed)
{
	return w.text == composed || (decomposed != NULL && w.text == decomposed);
}

/*
 * The signer's full name on the page: its words one after the other on a
 * line (the lowest such line: the signature block ends the page).  Its box
 * goes to NAME and the box of the line right above it (the signer's title,
 * the last line of the block's heading) to TITLE.
 */
static bool
find_signer(const std::vector<Word> &words, const std::string &full_name, Word &name, Word &title)
{
	std::vector<std::string> parts;
	bool		found = false;
	size_t		at = 0;

	while (at < full_name.size())
	{
		size_t		sp = full_name.find(' ', at);
		std::string part = full_name.substr(at, sp == std::string::npos ? std::string::npos : sp - at);

		if (!part.empty())
			parts.push_back(part);
		at = sp == std::string::npos ? full_name.size() : sp + 1;
	}
	if (parts.empty())
		return false;
	for (const Word &first : words)
	{
		const Word *w = &first;
		Word		box = first;
		size_t		i;

		if (w->text != parts[0])
			continue;
		for (i = 1; i < parts.size(); i++)
		{
			w = next_on_line(words, *w, 2 * w->size);
			if (w == NULL || w->text != parts[i])
				break;
			box.x1 = w->x1;
			box.y0 = std::min(box.y0, w->y0);
			box.y1 = std::max(box.y1, w->y1);
		}
		if (i < parts.size() || (found && box.y0 < name.y0))
			continue;
		name = box;
		found = true;
	}
	if (!found)
		return false;
	/* the title: the nearest words above the name that overlap it across */
	title = name;
	title.y1 = -1;
	for (const Word &w : words)
		if (w.y1 <= name.y0 + 0.5 && w.x1 > name.x0 - name.size && w.x0 < name.x1 + name.size &&
			w.y1 > title.y1)
		{
			title = w;
		}
	if (title.y1 < 0)
		title.y1 = name.y0 - 50 - name.size;	/* no title: the image's height above */
	return true;
}

/*
 * Where the image goes (Decree 30, Appendix I, II.7d and 8): a person's
 * signature image 50 pt high, centred on the given point, or else in the
 * signature block's usual place on the last page (right half, a quarter up
 * from the bottom); a seal at its real diameter, its right edge a third of
 * the way into the latest visible signature image, centred on its height.
 */
static Placement
place(PdfMemDocument &doc, const std::string &pdf, const PrepareOptions &opt,
	  double img_w, double img_h)
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
	Word		name,
				title;

	/*
	 * A person's signature without a position: centred between the title
	 * line and the signer's name in the signature block, when the name is
	 * on the last page (poppler's words are from the top left of the crop
	 * box); else the usual place above.
	 */
	if (opt.page < 1 && opt.seal_mm <= 0 && !opt.name.empty() &&
		find_signer(page_words(pdf, p.page), opt.name, name, title))
	{
		PdfRect		crop = doc.GetPage(p.page)->GetCropBox();

		cx = crop.GetLeft() + (name.x0 + name.x1) / 2;
		cy = crop.GetBottom() + crop.GetHeight() - (title.y1 + name.y0) / 2;
	}

	p.rect = PdfRect(cx - img_w / 2, cy - img_h / 2, img_w, img_h);
	return p;
}

/* ------------------------------------------------------------------------
 * The issue stamp: the number and the date written into the document in
 * the update that carries the organisation's signature (Decree 30, Appendix
 * I, II.3 and 4; the seeds: "the clerk's step writes the number and date").
 *
 * The text is a FreeText annotation, locked, printed, whose appearance
 * draws it in an embedded Times metric twin at the size of the words
 * around it; the page's content is not touched.  That is why the leader's
 * signature stays valid under it in the strict sense too: what comes after
 * a signature is only annotations and a signature field, which verify()
 * (changes_after) classifies as "signatures" -- a page's /Contents
 * changed after the leader signed would be, rightly, "content".
 * ------------------------------------------------------------------------
 */

/*
 * Liberation Serif (fonts-liberation2): Times New Roman's metrics and
 * Vietnamese glyphs; embedded, only the glyphs used (a subset), upright or
 * italic, regular or bold like the words beside the blank.
 */
#define STAMP_FONT_DIR "/usr/share/fonts/truetype/liberation2/"

static PdfFont *
stamp_font(PdfMemDocument &doc, bool bold, bool italic)
{
	std::string file = std::string(STAMP_FONT_DIR "LiberationSerif-") +
		(bold && italic ? "BoldItalic" : bold ? "Bold" : italic ? "Italic" : "Regular") + ".ttf";

	/* the file, not a look-up that might find another font */
	if (access(file.c_str(), R_OK) != 0)
		return NULL;
	try
	{
		return doc.CreateFontSubset("Liberation Serif", bold, italic, false,
									PdfEncodingFactory::GlobalIdentityEncodingInstance(),
									file.c_str());
	}
	catch (const PdfError &)
	{
		return NULL;
	}
}

/* where the text of a blank goes: its box is from the page's words */
struct Blank
{
	std::string text;
	double		left;			/* the blank, points from the crop box's top left */
	double		right;
	int			align;			/* -1 left, 0 centred, 1 right (against the "/") */
	const Word *beside;			/* the word whose line and size it takes */
};

/*
 * One line of text, black, as a locked printed FreeText annotation on PAGE
 * whose appearance draws it with its baseline at BASE (PDF coordinates).
 */
static void
draw_text(PdfMemDocument &doc, PdfPage *page, PdfFont *font, const std::string &text,
		  double x, double base, double size, double scale, std::vector<PdfXObject *> &owned)
{
	PdfString	str((const pdf_utf8 *) text.c_str());
	double		w;
	double		below = 0.25 * size;
	double		above = 0.95 * size;
	PdfXObject *look;
	PdfPainter	painter;
	PdfAnnotation *annot;

	font->SetFontSize((float) size);
	font->SetFontScale((float) (scale * 100));
	w = font->GetFontMetrics()->StringWidth(str);
	look = new PdfXObject(PdfRect(0, 0, w, below + above), &doc);
	owned.push_back(look);
	painter.SetPage(look);
	painter.SetFont(font);
	painter.SetColor(0, 0, 0);
	painter.DrawText(0, below, str);
	painter.FinishPage();
	annot = page->CreateAnnotation(ePdfAnnotation_FreeText, PdfRect(x, base - below, w, below + above));
	annot->SetAppearanceStream(look);
	annot->SetFlags(ePdfAnnotationFlags_Print | ePdfAnnotationFlags_ReadOnly |
					ePdfAnnotationFlags_Locked | ePdfAnnotationFlags_LockedContents);
	annot->SetContents(str);
	annot->GetObject()->GetDictionary().AddKey("DA", PdfString("0 g /" + font->GetIdentifier().GetName() +
															   " " + std::to_string((int) size) + " Tf"));
}

/* the word TEXT right of w on its line, within LIMIT points */
static const Word *
right_of(const std::vector<Word> &words, const Word &w, const char *text, double limit)
{
	const Word *best = NULL;

	for (const Word &o : words)
		if (o.text == text && same_line(w, o) && o.x0 >= w.x1 - 0.5 && o.x0 - w.x1 <= limit &&
			(best == NULL || o.x0 < best->x0))
			best = &o;
	return best;
}

/* a word of the line strictly between a and b (a blank has none) */
static bool
between(const std::vector<Word> &words, const Word &a, const Word &b)
{
	for (const Word &o : words)
		if (&o != &a && &o != &b && same_line(a, o) && o.x0 >= a.x1 - 0.5 && o.x1 <= b.x0 + 0.5)
			return true;
	return false;
}

/*
 * The blanks of page 1: after "Số:" when the next word begins with "/" (the
 * number goes right against it), and between "ngày", "tháng", "năm" of the
 * topmost line holding the three in order (each blank that has no word; the
 * year when nothing follows "năm").  Returns what the job's note says.
 */
static std::string
stamp_issue(PdfMemDocument &doc, const std::string &pdf, const PrepareOptions &opt,
			std::vector<PdfXObject *> &owned)
{
	std::vector<Word> words;
	std::vector<Blank> blanks;
	const Word *ngay = NULL;
	std::string written;		/* what the job's note says */
	std::string missing;

	if (opt.number.empty())
		return "";
	words = page_words(pdf, 0);
	for (const Word &w : words)
	{
		const Word *next;

		if (!is_word(w, "Số:", "So\xcc\x82\xcc\x81:"))
			continue;
		next = next_on_line(words, w, 20 * w.size);
		if (next != NULL && next->text[0] == '/')
		{
			blanks.push_back({opt.number, w.x1, next->x0, 1, &w});
			break;
		}
	}
	if (blanks.empty())
		missing = "no blank \"Số:   /…\" on page 1";
	else
		written = "the number";
	for (const Word &w : words)
		if (is_word(w, "ngày", "nga\xcc\x80y") && (ngay == NULL || w.y0 < ngay->y0))
		{
			const Word *t = right_of(words, w, "tháng", 12 * w.size);

			if (t != NULL && right_of(words, *t, "năm", 12 * w.size) != NULL)
				ngay = &w;
		}
	if (ngay != NULL)
	{
		const Word *thang = right_of(words, *ngay, "tháng", 12 * ngay->size);
		const Word *nam = right_of(words, *thang, "năm", 12 * ngay->size);
		size_t		had = blanks.size();

		if (!between(words, *ngay, *thang))
			blanks.push_back({opt.day, ngay->x1, thang->x0, 0, ngay});
		if (!between(words, *thang, *nam))
			blanks.push_back({opt.month, thang->x1, nam->x0, 0, ngay});
		if (next_on_line(words, *nam, 3 * nam->size) == NULL)
			blanks.push_back({opt.year, nam->x1, nam->x1 + 3 * nam->size, -1, ngay});
		if (blanks.size() > had)
			written += written.empty() ? "the date" : " and the date";
		else
			missing += missing.empty() ? "the date line has no blanks" : "; the date line has no blanks";
	}
	else
		missing += std::string(missing.empty() ? "" : "; ") + "no \"ngày … tháng … năm\" on page 1";
	if (blanks.empty())
		return "nothing written: " + missing;

	PdfPage    *page = doc.GetPage(0);
	PdfRect		crop = page->GetCropBox();

	if (crop.GetWidth() <= 0 || crop.GetHeight() <= 0)
		crop = page->GetMediaBox();
	/* every font first: a missing one writes nothing rather than a part */
	std::vector<PdfFont *> fonts;

	for (const Blank &b : blanks)
	{
		fonts.push_back(stamp_font(doc, b.beside->bold, b.beside->italic));
		if (fonts.back() == NULL)
			return "nothing written: the font Liberation Serif (fonts-liberation2) is not installed";
	}
	for (size_t i = 0; i < blanks.size(); i++)
	{
		const Blank &b = blanks[i];
		PdfFont    *font = fonts[i];
		double		size = b.beside->size;
		/* pdftotext parts words at gaps over about a tenth of the size */
		double		space = 0.15 * size;
		double		room = b.right - b.left - (b.align == 1 ? space : 2 * space);
		double		w;
		double		scale = 1;
		double		x;

		/*
		 * the baseline: poppler's box goes from the font's ascent to its
		 * descent, for Times and its twins about 0.2 to 0.24 of its height
		 * below the baseline
		 */
		double		base = b.beside->y1 - 0.22 * (b.beside->y1 - b.beside->y0);

		font->SetFontSize((float) size);
		font->SetFontScale(100);
		w = font->GetFontMetrics()->StringWidth(PdfString((const pdf_utf8 *) b.text.c_str()));
		if (w > room && room > 0)
		{
			/* a narrow blank: the text condensed, never over its neighbours */
			scale = std::max(0.6, room / w);
			w *= scale;
		}
		x = b.align == 1 ? b.right - w : b.align == 0 ? b.left + (b.right - b.left - w) / 2 : b.left + 0.25 * size;
		draw_text(doc, page, font, b.text, crop.GetLeft() + x,
				  crop.GetBottom() + crop.GetHeight() - base, size, scale, owned);
	}
	return written + " written" + (missing.empty() ? "" : "; " + missing);
}

/*
 * The text of a signature without image at the top right of page 1
 * (Decree 30, Appendix I, II.8b for attachments in files of their own and
 * Part II.3 for copies): Times (its metric twin), 10 pt, upright, black,
 * lines right-aligned 15 mm from the right edge, in the top margin (the
 * first baseline 24 pt from the top edge: three lines end above 20 mm).
 * One locked FreeText annotation, as the issue stamp.
 */
static std::string
stamp_corner(PdfMemDocument &doc, const PrepareOptions &opt, std::vector<PdfXObject *> &owned)
{
	std::vector<std::string> lines;
	size_t		at = 0;
	const double size = 10;
	const double leading = 11.5;
	const double below = 0.25 * size;
	PdfFont    *font = stamp_font(doc, false, false);
	PdfPage    *page = doc.GetPage(0);
	PdfRect		crop = page->GetCropBox();
	double		w = 0;
	double		h;
	std::string contents;
	PdfXObject *look;
	PdfPainter	painter;
	PdfAnnotation *annot;

	if (font == NULL)
		return "no text written: the font Liberation Serif (fonts-liberation2) is not installed";
	if (crop.GetWidth() <= 0 || crop.GetHeight() <= 0)
		crop = page->GetMediaBox();
	while (at <= opt.corner.size())
	{
		size_t		sep = opt.corner.find('\x1f', at);

		lines.push_back(opt.corner.substr(at, sep == std::string::npos ? std::string::npos : sep - at));
		at = sep == std::string::npos ? opt.corner.size() + 1 : sep + 1;
	}
	font->SetFontSize((float) size);
	font->SetFontScale(100);
	for (const std::string &l : lines)
	{
		w = std::max(w, font->GetFontMetrics()->StringWidth(PdfString((const pdf_utf8 *) l.c_str())));
		contents += (contents.empty() ? "" : "\n") + l;
	}
	h = (lines.size() - 1) * leading + 0.95 * size + below;
	look = new PdfXObject(PdfRect(0, 0, w, h), &doc);
	owned.push_back(look);
	painter.SetPage(look);
	painter.SetFont(font);
	painter.SetColor(0, 0, 0);
	for (size_t i = 0; i < lines.size(); i++)
	{
		PdfString	str((const pdf_utf8 *) lines[i].c_str());

		painter.DrawText(w - font->GetFontMetrics()->StringWidth(str),
						 h - 0.95 * size - i * leading, str);
	}
	painter.FinishPage();
	annot = page->CreateAnnotation(ePdfAnnotation_FreeText,
								   PdfRect(crop.GetLeft() + crop.GetWidth() - 15 * 72 / 25.4 - w,
										   crop.GetBottom() + crop.GetHeight() - 24 - h + 0.95 * size,
										   w, h));
	annot->SetAppearanceStream(look);
	annot->SetFlags(ePdfAnnotationFlags_Print | ePdfAnnotationFlags_ReadOnly |
					ePdfAnnotationFlags_Locked | ePdfAnnotationFlags_LockedContents);
	annot->SetContents(PdfString((const pdf_utf8 *) contents.c_str()));
	annot->GetObject()->GetDictionary().AddKey("DA", PdfString("0 g /" + font->GetIdentifier().GetName() + " 10 Tf"));
	return "the text at the top right of page 1 written";
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
	std::string note;

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
		std::vector<PdfXObject *> stamps;

		/* signatures exist and the file is append-only (PDF 32000 12.7.2) */
		form->GetObject()->GetDictionary().AddKey("SigFlags", PdfObject((pdf_int64) 3));
		signer.SetSignatureSize(opt.room);
		if (!opt.image.empty())
		{
			img = new PdfImage(&doc);
			img->LoadFromPngData((const unsigned char *) opt.image.data(), (pdf_long) opt.image.size());
			where = place(doc, pdf, opt, img->GetWidth(), img->GetHeight());
		}
		note = stamp_issue(doc, pdf, opt, stamps);
		if (!opt.corner.empty())
			note = stamp_corner(doc, opt, stamps);
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
		for (PdfXObject *x : stamps)
			delete x;

		if (range.size() != 4)
			throw PdfError(ePdfError_InternalLogic);
		/* the update appends: the input is the prefix, byte for byte */
		if (out.GetSize() <= pdf.size() || memcmp(out.GetBuffer(), pdf.data(), pdf.size()) != 0)
			throw PdfError(ePdfError_InternalLogic, __FILE__, __LINE__,
						   "the update does not begin with the input");
		printf("ok %lld %lld %lld %lld %zu%s%s\n",
			   (long long) range[0].GetNumber(), (long long) range[1].GetNumber(),
			   (long long) range[2].GetNumber(), (long long) range[3].GetNumber(),
			   (size_t) dev.GetLength(), note.empty() ? "" : " ", one_line(note).c_str());
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

static void print_dss(PdfMemDocument &doc);

static int
signatures(const std::string &pdf)
{
	PdfMemDocument doc;
	int			count = 0;

	doc.LoadFromBuffer(pdf.data(), (long) pdf.size(), false);
	print_dss(doc);
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

/* ------------------------------------------------------------------------
 * dss: the Document Security Store
 * ------------------------------------------------------------------------
 */

/* DER items one after the other (each a SEQUENCE), split by their headers */
static bool
split_der(const std::string &blob, std::vector<std::string> &items)
{
	size_t		at = 0;

	while (at < blob.size())
	{
		if (blob.size() - at < 2 || (unsigned char) blob[at] != 0x30)
			return false;
		unsigned char l = (unsigned char) blob[at + 1];
		size_t		head = 2;
		size_t		len = l;

		if (l & 0x80)
		{
			size_t		n = l & 0x7f;

			if (n < 1 || n > 4 || blob.size() - at < 2 + n)
				return false;
			len = 0;
			for (size_t i = 0; i < n; i++)
				len = len << 8 | (unsigned char) blob[at + 2 + i];
			head = 2 + n;
		}
		if (len > blob.size() - at - head)
			return false;
		items.push_back(blob.substr(at, head + len));
		at += head + len;
	}
	return true;
}

/* the decoded bytes of a stream the object (or the reference) names; "" if none */
static std::string
stream_bytes(PdfMemDocument &doc, const PdfObject *o)
{
	std::string s;

	if (o != NULL && o->IsReference())
		o = doc.GetObjects().GetObject(o->GetReference());
	if (o == NULL || !o->HasStream())
		return s;
	char	   *buf = NULL;
	pdf_long	len = 0;

	const_cast<PdfObject *>(o)->GetStream()->GetFilteredCopy(&buf, &len);
	s.assign(buf, len);
	podofo_free(buf);
	return s;
}

/* the DSS dictionary of the catalog, or NULL */
static PdfObject *
dss_of(PdfMemDocument &doc)
{
	PdfObject  *d = doc.GetCatalog()->GetDictionary().GetKey("DSS");

	if (d != NULL && d->IsReference())
		d = doc.GetObjects().GetObject(d->GetReference());
	return (d != NULL && d->IsDictionary()) ? d : NULL;
}

/* one array of the DSS: the old entries, then a stream for each new item */
static PdfArray
dss_array(PdfMemDocument &doc, PdfObject *old_dss, const char *key,
		  const std::vector<std::string> &items)
{
	PdfArray	a;
	std::vector<std::string> have;
	const PdfObject *old = old_dss ? old_dss->GetDictionary().GetKey(key) : NULL;

	if (old != NULL && old->IsReference())
		old = doc.GetObjects().GetObject(old->GetReference());
	if (old != NULL && old->IsArray())
		for (const PdfObject &e : old->GetArray())
		{
			a.push_back(e);
			have.push_back(stream_bytes(doc, &e));
		}
	for (const std::string &item : items)
	{
		if (std::find(have.begin(), have.end(), item) != have.end())
			continue;
		PdfObject  *o = doc.GetObjects().CreateObject(PdfDictionary());

		/* raw DER, no filter: what a verifier reads is the certificate itself */
		o->GetStream()->Set(item.data(), (pdf_long) item.size(), TVecFilters());
		a.push_back(PdfObject(o->Reference()));
		have.push_back(item);
	}
	return a;
}

static int
dss(const std::string &pdf, const PrepareOptions &opt)
{
	PdfMemDocument doc;
	PdfRefCountedBuffer out;
	std::vector<std::string> certs;
	std::vector<std::string> crls;

	if (opt.room > opt.image.size() || !split_der(opt.image.substr(0, opt.room), certs) ||
		!split_der(opt.image.substr(opt.room), crls))
	{
		fputs("error\tthe certificates and revocation lists are not DER\n", stdout);
		return 1;
	}
	doc.LoadFromBuffer(pdf.data(), (long) pdf.size(), true);
	if (doc.GetEncrypted())
	{
		fputs("error\tthe PDF is encrypted\n", stdout);
		return 2;
	}
	{
		PdfObject  *old = dss_of(doc);
		/* keys added to the new object, not given at its creation: only a
		 * changed object is written by WriteUpdate */
		PdfObject  *o = doc.GetObjects().CreateObject(PdfDictionary());
		PdfDictionary &d = o->GetDictionary();

		d.AddKey("Certs", dss_array(doc, old, "Certs", certs));
		d.AddKey("CRLs", dss_array(doc, old, "CRLs", crls));
		if (old != NULL && old->GetDictionary().HasKey("OCSPs"))
			d.AddKey("OCSPs", *old->GetDictionary().GetKey("OCSPs"));
		if (old != NULL && old->GetDictionary().HasKey("VRI"))
			d.AddKey("VRI", *old->GetDictionary().GetKey("VRI"));
		doc.GetCatalog()->GetDictionary().AddKey("DSS", o->Reference());
	}
	{
		PdfOutputDevice dev(&out);

		doc.WriteUpdate(&dev, true);
		if (dev.GetLength() <= pdf.size() || memcmp(out.GetBuffer(), pdf.data(), pdf.size()) != 0)
			throw PdfError(ePdfError_InternalLogic, __FILE__, __LINE__,
						   "the update does not begin with the input");
		printf("ok 0 0 0 0 %zu\n", (size_t) dev.GetLength());
		fflush(stdout);
		write_all(out.GetBuffer(), dev.GetLength());
	}
	return 0;
}

/* the "dss" line of the signatures answer */
static void
print_dss(PdfMemDocument &doc)
{
	PdfObject  *d = dss_of(doc);

	if (d == NULL)
		return;
	fputs("dss\t", stdout);
	for (const char *key : {"Certs", "CRLs"})
	{
		const PdfObject *a = d->GetDictionary().GetKey(key);
		bool		first = true;

		if (a != NULL && a->IsReference())
			a = doc.GetObjects().GetObject(a->GetReference());
		if (a != NULL && a->IsArray())
			for (const PdfObject &e : a->GetArray())
			{
				std::string der = stream_bytes(doc, &e);

				if (der.empty() || der.size() > 65536)
					continue;
				if (!first)
					fputc(',', stdout);
				fputs(hex(der).c_str(), stdout);
				first = false;
			}
		fputc(strcmp(key, "Certs") == 0 ? '\t' : '\n', stdout);
	}
}

/* one command on one PDF: its answer on stdout, and the status */
/* ------------------------------------------------------------------------
 * mark: the download mark (Decree 30, Appendix VI, III.6k "đánh dấu vào văn
 * bản, tài liệu ... được in ra từ Hệ thống"): one line, who took the copy
 * and when, at the foot of every page, as a locked printed FreeText
 * annotation (as the issue stamp: the pages' content is not touched), in
 * an incremental update: the copy begins with the stored file byte for
 * byte, so its signatures still verify as revisions before the mark.
 * Answers "ok <length>\n" then the copy's bytes.
 * ------------------------------------------------------------------------
 */
static int
mark(const std::string &pdf, const PrepareOptions &opt)
{
	PdfMemDocument doc;
	PdfRefCountedBuffer out;
	std::vector<PdfXObject *> owned;
	PdfFont    *font;
	PdfString	str((const pdf_utf8 *) opt.mark.c_str());
	const double size = 8;

	doc.LoadFromBuffer(pdf.data(), (long) pdf.size(), true);
	if (doc.GetPageCount() < 1)
		throw PdfError(ePdfError_PageNotFound);
	if (doc.GetEncrypted())
	{
		fputs("error\tthe PDF is encrypted\n", stdout);
		return 2;
	}
	if (opt.mark.empty())
	{
		fputs("error\tno mark given\n", stdout);
		return 1;
	}
	font = stamp_font(doc, false, true);
	if (font == NULL)
	{
		fputs("error\tthe font Liberation Serif (fonts-liberation2) is not installed\n", stdout);
		return 1;
	}
	for (int i = 0; i < doc.GetPageCount(); i++)
	{
		PdfPage    *page = doc.GetPage(i);
		PdfRect		crop = page->GetCropBox();
		double		w;
		double		scale = 1;

		if (crop.GetWidth() <= 0 || crop.GetHeight() <= 0)
			crop = page->GetMediaBox();
		font->SetFontSize((float) size);
		font->SetFontScale(100);
		w = font->GetFontMetrics()->StringWidth(str);
		/* narrower, never smaller, when the line is wider than the page's margins */
		if (w > crop.GetWidth() - 40)
			scale = std::max(0.5, (crop.GetWidth() - 40) / w);
		/* centred, the baseline 7 mm above the bottom edge */
		draw_text(doc, page, font, opt.mark,
				  crop.GetLeft() + (crop.GetWidth() - w * scale) / 2,
				  crop.GetBottom() + 7 * 72 / 25.4, size, scale, owned);
	}
	{
		PdfOutputDevice dev(&out);

		doc.WriteUpdate(&dev, true);
		for (PdfXObject *x : owned)
			delete x;
		/* the update appends: the input is the prefix, byte for byte */
		if (dev.GetLength() <= pdf.size() || memcmp(out.GetBuffer(), pdf.data(), pdf.size()) != 0)
			throw PdfError(ePdfError_InternalLogic, __FILE__, __LINE__,
						   "the update does not begin with the input");
		printf("ok %zu\n", (size_t) dev.GetLength());
		fflush(stdout);
		write_all(out.GetBuffer(), dev.GetLength());
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Tables and books: the search results as a PDF (table), a case file as
 * one PDF (book).
 *
 *   ioffice_pdf table < spec
 *     A PDF of one table, A4 landscape: the spec's title lines, then the
 *     table with its heading row repeated on every page, each page
 *     numbered "Trang n/N" at its foot.  Answers "ok
 *     <length>\n" then the PDF's bytes.
 *
 *   ioffice_pdf book < "<spec length>\n" spec, then per PDF "<length>\n" bytes
 *     A case file as one PDF (Decree 30, Appendix VI, III.4g): a first
 *     part with its title lines and its table of contents (mục lục văn bản
 *     trong hồ sơ), A4 portrait, then every document's PDFs in the order
 *     of the rows.  The last column of the table is filled here: the pages
 *     of the document in the whole file, or the spec's "nopdf" text for a
 *     row without one (or whose PDF cannot be read: "unreadable").  The
 *     documents' signature values (/V of their signature fields) are
 *     dropped: the book is a copy, its pages are no longer the bytes that
 *     were signed, and no reader should show a signature of it as valid (a
 *     reader finds the fields, unsigned); the signatures' visible
 *     appearance (the image, the seal) stays on the page.  Answers "ok <length>
 *     <toc pages>\n" then the bytes.
 *
 * The spec is UTF-8 text, one line each, fields separated by tabs:
 *   title TAB text          a centred bold line above the table
 *   line TAB text           a centred line above the table
 *   col TAB width TAB centre(0/1) TAB heading    (width: relative)
 *   row TAB cell ...        a row (table)
 *   doc TAB files TAB cell ...   a row followed by <files> PDFs (book)
 *   nopdf TAB text / unreadable TAB text / pages TAB width TAB heading (book)
 * Text is drawn with Liberation Serif (Vietnamese glyphs, embedded subsets).
 * ------------------------------------------------------------------------
 */
struct TableSpec
{
	std::vector<std::pair<bool, std::string>> heads;	/* (bold, text) */
	std::vector<double> widths;
	std::vector<bool> centre;
	std::vector<std::string> headings;
	std::vector<std::vector<std::string>> rows;
	std::vector<int> files;		/* book: PDFs after each row */
	std::string nopdf = "no PDF";
	std::string unreadable = "unreadable PDF";
};

static std::vector<std::string>
split_tabs(const std::string &line)
{
	std::vector<std::string> f;
	size_t		at = 0;

	for (;;)
	{
		size_t		tab = line.find('\t', at);

		f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
		if (tab == std::string::npos)
			return f;
		at = tab + 1;
	}
}

static TableSpec
parse_spec(const std::string &text, bool book)
{
	TableSpec	s;
	size_t		at = 0;

	while (at < text.size())
	{
		size_t		nl = text.find('\n', at);
		std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
		std::vector<std::string> f = split_tabs(line);

		at = nl == std::string::npos ? text.size() : nl + 1;
		if (f[0] == "title" && f.size() == 2)
			s.heads.push_back({true, f[1]});
		else if (f[0] == "line" && f.size() == 2)
			s.heads.push_back({false, f[1]});
		else if ((f[0] == "col" && f.size() == 4) || (book && f[0] == "pages" && f.size() == 3))
		{
			s.widths.push_back(std::max(1.0, atof(f[1].c_str())));
			s.centre.push_back(f[0] == "pages" || f[2] == "1");
			s.headings.push_back(f.back());
		}
		else if (!book && f[0] == "row")
			s.rows.push_back(std::vector<std::string>(f.begin() + 1, f.end()));
		else if (book && f[0] == "doc" && f.size() >= 2)
		{
			s.files.push_back(std::max(0, atoi(f[1].c_str())));
			s.rows.push_back(std::vector<std::string>(f.begin() + 2, f.end()));
		}
		else if (book && f[0] == "nopdf" && f.size() == 2)
			s.nopdf = f[1];
		else if (book && f[0] == "unreadable" && f.size() == 2)
			s.unreadable = f[1];
		else if (!line.empty())
			throw std::runtime_error("a line of the table's spec is not understood");
	}
	if (s.widths.empty())
		throw std::runtime_error("the table has no columns");
	for (auto &r : s.rows)
		r.resize(book ? s.widths.size() - 1 : s.widths.size());
	return s;
}

/* the width of UTF-8 text in the font at its current size */
static double
text_width(PdfFont *font, const std::string &s)
{
	if (s.empty())
		return 0;
	return font->GetFontMetrics()->StringWidth(PdfString((const pdf_utf8 *) s.c_str()));
}

/* the length of the UTF-8 character at s[i] */
static size_t
utf8_len(const std::string &s, size_t i)
{
	unsigned char c = (unsigned char) s[i];
	size_t		l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;

	return std::min(l, s.size() - i);
}

/* text broken into lines no wider than WIDTH: at spaces, or inside a word too long */
static std::vector<std::string>
wrap(PdfFont *font, const std::string &text, double width)
{
	std::vector<std::string> lines;
	std::string line;
	size_t		at = 0;

	while (at < text.size())
	{
		size_t		sp = text.find(' ', at);
		std::string word = text.substr(at, sp == std::string::npos ? std::string::npos : sp - at);
		std::string candidate = line.empty() ? word : line + " " + word;

		at = sp == std::string::npos ? text.size() : sp + 1;
		if (word.empty())
			continue;
		if (text_width(font, candidate) <= width)
		{
			line = candidate;
			continue;
		}
		if (!line.empty())
			lines.push_back(line);
		line.clear();
		/* a word wider than the column: cut between characters */
		for (size_t i = 0; i < word.size();)
		{
			size_t		l = utf8_len(word, i);

			if (!line.empty() && text_width(font, line + word.substr(i, l)) > width)
			{
				lines.push_back(line);
				line.clear();
			}
			line += word.substr(i, l);
			i += l;
		}
	}
	if (!line.empty() || lines.empty())
		lines.push_back(line);
	return lines;
}

struct TableLayout
{
	PdfFont    *regular;
	PdfFont    *bold;
	PdfRect		size;			/* the page */
	double		margin = 42;	/* 15 mm */
	double		font_size = 10;
	double		leading = 12.5;
	double		pad = 3;
};

/*
 * Draw the spec's title lines and table from a new page on: returns the
 * pages made.  With DRY, nothing is drawn (the pages are only counted).
 */
static int
draw_table(PdfMemDocument &doc, const TableLayout &L, const TableSpec &s,
		   const std::vector<std::vector<std::string>> &rows, bool dry)
{
	double		avail = L.size.GetWidth() - 2 * L.margin;
	double		total = 0;
	std::vector<double> w;
	std::vector<double> x;
	PdfPainter	painter;
	PdfPage    *page = NULL;
	int			pages = 0;
	double		y = 0;

	for (double v : s.widths)
		total += v;
	for (size_t c = 0; c < s.widths.size(); c++)
	{
		x.push_back(c == 0 ? L.margin : x[c - 1] + w[c - 1]);
		w.push_back(avail * s.widths[c] / total);
	}

	auto line_at = [&](PdfFont *font, double size, const std::string &t, double left, double width,
					   bool centre, double base)
	{
		font->SetFontSize((float) size);
		if (!dry && !t.empty())
		{
			double		tw = text_width(font, t);

			painter.SetFont(font);
			painter.DrawText(centre ? left + (width - tw) / 2 : left, base,
							 PdfString((const pdf_utf8 *) t.c_str()));
		}
	};
	/* one row: its cells' lines, bordered; false if it does not fit */
	auto draw_row = [&](const std::vector<std::string> &cells, PdfFont *font, bool force) -> bool
	{
		std::vector<std::vector<std::string>> lines;
		size_t		most = 1;
		double		h;

		font->SetFontSize((float) L.font_size);
		for (size_t c = 0; c < w.size(); c++)
		{
			lines.push_back(wrap(font, c < cells.size() ? cells[c] : "", w[c] - 2 * L.pad));
			most = std::max(most, lines.back().size());
		}
		h = most * L.leading + 2 * L.pad;
		if (!force && y - h < L.margin)
			return false;
		for (size_t c = 0; c < w.size(); c++)
		{
			for (size_t i = 0; i < lines[c].size(); i++)
				line_at(font, L.font_size, lines[c][i], x[c] + L.pad, w[c] - 2 * L.pad, s.centre[c],
						y - L.pad - (i + 1) * L.leading + 0.25 * L.font_size);
			if (!dry)
			{
				painter.Rectangle(x[c], y - h, w[c], h);
				painter.Stroke();
			}
		}
		y -= h;
		return true;
	};
	auto new_page = [&]()
	{
		if (!dry && page != NULL)
			painter.FinishPage();
		pages++;
		page = dry ? NULL : doc.CreatePage(L.size);
		if (!dry)
		{
			painter.SetPage(page);
			painter.SetStrokeWidth(0.5);
			painter.SetColor(0, 0, 0);
		}
		y = L.size.GetHeight() - L.margin;
	};

	new_page();
	for (const auto &h : s.heads)
	{
		double		size = h.first ? 14 : 11;
		PdfFont    *font = h.first ? L.bold : L.regular;

		font->SetFontSize((float) size);
		for (const std::string &l : wrap(font, h.second, avail))
		{
			y -= size * 1.3;
			line_at(font, size, l, L.margin, avail, true, y);
		}
	}
	y -= 10;
	draw_row(s.headings, L.bold, true);
	for (const auto &r : rows)
		if (!draw_row(r, L.regular, false))
		{
			new_page();
			draw_row(s.headings, L.bold, true);
			draw_row(r, L.regular, true);
		}
	if (!dry && page != NULL)
		painter.FinishPage();
	return pages;
}

static bool
table_fonts(PdfMemDocument &doc, TableLayout &L)
{
	L.regular = stamp_font(doc, false, false);
	L.bold = stamp_font(doc, true, false);
	if (L.regular == NULL || L.bold == NULL)
	{
		fputs("error\tthe font Liberation Serif (fonts-liberation2) is not installed\n", stdout);
		return false;
	}
	return true;
}

static void
write_document(PdfMemDocument &doc, const std::string &extra)
{
	PdfRefCountedBuffer out;
	PdfOutputDevice dev(&out);

	doc.Write(&dev);
	printf("ok %zu%s\n", (size_t) dev.GetLength(), extra.c_str());
	fflush(stdout);
	write_all(out.GetBuffer(), dev.GetLength());
}

/*
 * "Trang n/N" centred in the bottom margin of every page (which the rows
 * never reach: draw_table() keeps above it), as the workbooks' footer says
 * it ("&CTrang &P/&N"): a printed list of search results is put back in
 * order, and a missing page is seen.
 */
static void
number_pages(PdfMemDocument &doc, const TableLayout &L)
{
	int			n = doc.GetPageCount();

	for (int i = 0; i < n; i++)
	{
		PdfPainter	painter;
		std::string t = "Trang " + std::to_string(i + 1) + "/" + std::to_string(n);

		L.regular->SetFontSize(9);
		painter.SetPage(doc.GetPage(i));
		painter.SetFont(L.regular);
		painter.SetColor(0, 0, 0);
		painter.DrawText((L.size.GetWidth() - text_width(L.regular, t)) / 2, L.margin / 2,
						 PdfString((const pdf_utf8 *) t.c_str()));
		painter.FinishPage();
	}
}

static int
table(const std::string &input)
{
	TableSpec	s = parse_spec(input, false);
	PdfMemDocument doc;
	TableLayout L;

	L.size = PdfPage::CreateStandardPageSize(ePdfPageSize_A4, true);
	if (!table_fonts(doc, L))
		return 1;
	doc.GetInfo()->SetCreator(PdfString("ioffice"));
	draw_table(doc, L, s, s.rows, false);
	number_pages(doc, L);
	write_document(doc, "");
	return 0;
}

/* a field's type, from the field or the fields above it */
static bool
is_signature_field(PdfObject *o)
{
	for (int depth = 0; o != NULL && o->IsDictionary() && depth < 32; depth++)
	{
		PdfObject  *ft = o->GetDictionary().GetKey(PdfName("FT"));

		if (ft != NULL && ft->IsName())
			return ft->GetName() == PdfName("Sig");
		o = o->GetIndirectKey(PdfName("Parent"));
	}
	return false;
}

/* the signature values of the widgets on a page: dropped (see above) */
static void
drop_signature_values(PdfPage *page)
{
	for (int i = 0; i < page->GetNumAnnots(); i++)
	{
		PdfAnnotation *a = page->GetAnnotation(i);
		PdfObject  *o = a != NULL ? a->GetObject() : NULL;

		if (o == NULL || a->GetType() != ePdfAnnotation_Widget || !is_signature_field(o))
			continue;
		for (int depth = 0; o != NULL && o->IsDictionary() && depth < 32; depth++)
		{
			o->GetDictionary().RemoveKey(PdfName("V"));
			o = o->GetIndirectKey(PdfName("Parent"));
		}
	}
}

static int
book(const std::string &input)
{
	size_t		nl = input.find('\n');
	size_t		spec_len = nl == std::string::npos ? 0 : (size_t) atoll(input.substr(0, nl).c_str());
	size_t		at;
	TableSpec	s;
	std::vector<std::vector<std::unique_ptr<PdfMemDocument>>> docs;
	std::vector<int> doc_pages;
	PdfMemDocument out;
	TableLayout L;
	int			toc = 1;
	std::vector<std::vector<std::string>> rows;

	if (nl == std::string::npos || spec_len > input.size() - nl - 1)
		throw std::runtime_error("the book's spec is cut short");
	s = parse_spec(input.substr(nl + 1, spec_len), true);
	at = nl + 1 + spec_len;
	/* every PDF, read (one that cannot be is named so in the contents) */
	for (size_t r = 0; r < s.rows.size(); r++)
	{
		int			pages = 0;
		bool		unreadable = false;

		docs.emplace_back();
		for (int f = 0; f < s.files[r]; f++)
		{
			size_t		e = input.find('\n', at);
			size_t		len = e == std::string::npos ? 0 : (size_t) atoll(input.substr(at, e - at).c_str());
			std::unique_ptr<PdfMemDocument> d(new PdfMemDocument());

			if (e == std::string::npos || len > input.size() - e - 1)
				throw std::runtime_error("the book's PDFs are cut short");
			at = e + 1 + len;
			try
			{
				d->LoadFromBuffer(input.data() + e + 1, (long) len, true);
				if (d->GetEncrypted() || d->GetPageCount() < 1)
					throw PdfError(ePdfError_InvalidDataType);
				pages += d->GetPageCount();
				docs.back().push_back(std::move(d));
			}
			catch (const PdfError &)
			{
				unreadable = true;
			}
		}
		doc_pages.push_back(unreadable ? -1 : pages);
		if (unreadable)
			docs.back().clear();
	}

	L.size = PdfPage::CreateStandardPageSize(ePdfPageSize_A4, false);
	if (!table_fonts(out, L))
		return 1;
	out.GetInfo()->SetCreator(PdfString("ioffice"));
	/* the contents' length depends on the page numbers it shows: until stable */
	for (int round = 0; round < 4; round++)
	{
		int			next = toc + 1;
		int			need;

		rows = s.rows;
		for (size_t r = 0; r < rows.size(); r++)
		{
			if (doc_pages[r] < 0)
				rows[r].push_back(s.unreadable);
			else if (doc_pages[r] == 0)
				rows[r].push_back(s.nopdf);
			else
				rows[r].push_back(doc_pages[r] == 1 ? std::to_string(next) :
								  std::to_string(next) + "–" + std::to_string(next + doc_pages[r] - 1));
			next += std::max(0, doc_pages[r]);
		}
		need = draw_table(out, L, s, rows, true);
		if (need == toc)
			break;
		toc = need;
	}
	if (draw_table(out, L, s, rows, false) != toc)
		throw std::runtime_error("the table of contents did not settle");
	for (auto &row : docs)
		for (auto &d : row)
		{
			int			first = out.GetPageCount();

			out.Append(*d);
			for (int p = first; p < out.GetPageCount(); p++)
				drop_signature_values(out.GetPage(p));
			d.reset();
		}
	write_document(out, " " + std::to_string(toc) + " " + std::to_string(out.GetPageCount()));
	return 0;
}

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
		if (command == "mark")
			return mark(pdf, opt);
		if (command == "dss")
			return dss(pdf, opt);
		if (command == "table")
			return table(pdf);
		if (command == "book")
			return book(pdf);
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
 * <seal mm>\t<page>\t<x>\t<y>\t<number>\t<day>\t<month>\t<year>\n", <length>
 * bytes of PDF, <image length> of PNG (the last four: the issue stamp,
 * empty when none); the answer is what "prepare" prints, then
 * "status <n>\n".  The
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
		opt.number = field(header, at);
		opt.day = field(header, at);
		opt.month = field(header, at);
		opt.year = field(header, at);
		opt.corner = field(header, at);
		if (command != "prepare" && command != "signatures" && command != "dss")
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
	poppler::set_debug_error_function(quiet, NULL);
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
		else if (k == "--corner")
			opt.corner = argv[i + 1];
		else if (k == "--mark")
			opt.mark = argv[i + 1];
		else if (k == "--number")
			opt.number = argv[i + 1];
		else if (k == "--date" && strlen(argv[i + 1]) == 10)
		{
			/* YYYY-MM-DD, written as Decree 30 writes a date */
			std::string d = argv[i + 1];
			int			month = atoi(d.substr(5, 2).c_str());

			opt.year = d.substr(0, 4);
			opt.month = month < 3 ? d.substr(5, 2) : std::to_string(month);
			opt.day = d.substr(8, 2);
		}
		else if (k == "--image" || k == "--seal")
		{
			FILE	   *f = fopen(argv[i + 1], "rb");
			char		buf[65536];
			size_t		n;

			if (f == NULL)
			{
				fprintf(stdout, "error\tcannot read %s\n", argv[i + 1]);
				return 1;
			}
			while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
				opt.image.append(buf, n);
			fclose(f);
			if (k == "--seal")
				opt.seal_mm = 35;
		}
		else
		{
			fprintf(stdout, "error\tunknown option %s\n", argv[i]);
			return 1;
		}
	}
	if (command == "serve")
		return serve(argc > 2 && atoll(argv[2]) > 0 ? (rlim_t) atoll(argv[2]) : 30);
	if (command != "prepare" && command != "signatures" && command != "mark" &&
		command != "table" && command != "book")
	{
		fputs("error\tusage: ioffice_pdf prepare|signatures|mark|table|book|serve < in.pdf\n", stdout);
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

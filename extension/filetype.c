/*-------------------------------------------------------------------------
 * filetype.c
 *	  Recognising a file's type from its bytes.
 *
 * The seeds' rule is that only office documents and PDFs travel, and a name
 * says nothing reliable about what is inside; so the content decides:
 *   pdf        "%PDF-" at the start
 *   docx/xlsx  a zip whose central directory names word/document.xml or
 *              xl/workbook.xml (Office Open XML)
 *   doc/xls    an OLE2 compound file with a WordDocument, or a Workbook/Book,
 *              directory entry
 *   odt/ods    a zip whose first entry, "mimetype", names an OpenDocument
 *              text or spreadsheet (accepted when ioffice.allowed_file_types
 *              lists them; the signing worker converts them to PDF)
 * Anything else is "zip", "ole2" or NULL (unknown).  Every read is bounds
 * checked: the input is whatever a client sent.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "ioffice.h"

static inline uint32
le16(const unsigned char *p)
{
	return (uint32) p[0] | ((uint32) p[1] << 8);
}

static inline uint32
le32(const unsigned char *p)
{
	return (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) | ((uint32) p[3] << 24);
}

/*
 * OpenDocument: the zip's first entry is "mimetype", stored uncompressed,
 * holding the document's media type (ODF 1.2, part 3, 3.3).
 */
static const char *
odf_kind(const unsigned char *data, size_t len)
{
	static const char odt[] = "application/vnd.oasis.opendocument.text";
	static const char ods[] = "application/vnd.oasis.opendocument.spreadsheet";
	size_t		name_len,
				size,
				start;

	if (len < 30 || le16(data + 8) != 0)
		return NULL;
	name_len = le16(data + 26);
	size = le32(data + 18);
	start = 30 + name_len + le16(data + 28);
	if (name_len != 8 || memcmp(data + 30, "mimetype", 8) != 0 || start > len || len - start < size)
		return NULL;
	if (size == strlen(odt) && memcmp(data + start, odt, size) == 0)
		return "odt";
	if (size == strlen(ods) && memcmp(data + start, ods, size) == 0)
		return "ods";
	return NULL;
}

static const char *
zip_kind(const unsigned char *data, size_t len)
{
	size_t		eocd;
	size_t		lowest;
	size_t		pos;
	uint32		entries;
	uint32		i;

	/* the end-of-central-directory record is in the last 22 + 65535 bytes */
	if (len < 22)
		return "zip";
	if (odf_kind(data, len) != NULL)
		return odf_kind(data, len);
	lowest = len > 22 + 65535 ? len - 22 - 65535 : 0;
	for (eocd = len - 22;; eocd--)
	{
		if (memcmp(data + eocd, "PK\005\006", 4) == 0)
			break;
		if (eocd == lowest)
			return "zip";
	}
	entries = le16(data + eocd + 10);
	pos = le32(data + eocd + 16);

	for (i = 0; i < entries; i++)
	{
		size_t		name_len;
		const char *name;

		if (pos > eocd || eocd - pos < 46 || memcmp(data + pos, "PK\001\002", 4) != 0)
			return "zip";
		name_len = le16(data + pos + 28);
		if (eocd - pos - 46 < name_len)
			return "zip";
		name = (const char *) data + pos + 46;
		if (name_len == strlen("word/document.xml") &&
			memcmp(name, "word/document.xml", name_len) == 0)
			return "docx";
		if (name_len == strlen("xl/workbook.xml") &&
			memcmp(name, "xl/workbook.xml", name_len) == 0)
			return "xlsx";
		pos += 46 + name_len + le16(data + pos + 30) + le16(data + pos + 32);
	}
	return "zip";
}

/* Does the 128-byte OLE2 directory entry at p carry this (ASCII) name? */
static bool
ole2_entry_is(const unsigned char *p, const char *name)
{
	size_t		n = strlen(name);
	size_t		i;

	/* name length in bytes, UTF-16LE with its terminating zero */
	if (le16(p + 64) != (n + 1) * 2)
		return false;
	for (i = 0; i < n; i++)
		if (p[2 * i] != (unsigned char) name[i] || p[2 * i + 1] != 0)
			return false;
	return true;
}

static const char *
ole2_kind(const unsigned char *data, size_t len)
{
	size_t		p;

	/*
	 * Directory entries are 128 bytes and directory sectors (512 or 4096
	 * bytes) start after the 512-byte header, so every entry starts at a
	 * multiple of 128.  Looking at those places, rather than following the
	 * sector chains, is enough to tell a Word from an Excel file.
	 */
	for (p = 512; p + 128 <= len; p += 128)
	{
		if (ole2_entry_is(data + p, "WordDocument"))
			return "doc";
		if (ole2_entry_is(data + p, "Workbook") || ole2_entry_is(data + p, "Book"))
			return "xls";
	}
	return "ole2";
}

const char *
ioffice_detect_file_kind(const unsigned char *data, size_t len)
{
	static const unsigned char ole2_magic[8] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};

	if (len >= 5 && memcmp(data, "%PDF-", 5) == 0)
		return "pdf";
	if (len >= 4 && memcmp(data, "PK\003\004", 4) == 0)
		return zip_kind(data, len);
	if (len >= 512 && memcmp(data, ole2_magic, 8) == 0)
		return ole2_kind(data, len);
	return NULL;
}

PG_FUNCTION_INFO_V1(ioffice_file_kind);
Datum
ioffice_file_kind(PG_FUNCTION_ARGS)
{
	bytea	   *content = PG_GETARG_BYTEA_PP(0);
	const char *kind = ioffice_detect_file_kind((const unsigned char *) VARDATA_ANY(content),
												VARSIZE_ANY_EXHDR(content));

	if (kind == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(kind));
}

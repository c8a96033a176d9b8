-- ---------------------------------------------------------------------------
-- A scanned PDF (no text layer: pdftotext finds almost nothing) is read by
-- OCR for search() (Decree 30, Appendix VI, III.6d: the text of the files):
-- the worker's text helper renders its pages with pdftoppm and reads them
-- with Tesseract in Vietnamese (workers/ioffice_text.py, workers/text_jobs.c;
-- at most ioffice.search_ocr_pages pages, within ioffice.pdf_helper_timeout).
-- Its job says so: OCR text may misread a word, the text layer does not.
-- ---------------------------------------------------------------------------
ALTER TABLE search_extraction ADD COLUMN ocr boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN search_extraction.ocr IS
  'The file''s text was read by OCR (a scanned PDF without a text layer: Tesseract, Vietnamese), not taken from the file';

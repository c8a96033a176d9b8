-- edXML packages (QCVN 102:2016): edxml_build() for an issued document and
-- an external recipient; the fields, the limits, Vietnamese text intact;
-- the refusals named.  (Signing, verifying and receiving: TAP 034.)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v liên thông văn bản điện tử với Văn phòng Chính phủ',
       '{"signer": "dai", "page_count": 3, "copies": 2, "urgency": "urgent",
         "recipients": ["000.00.00.G22", "001.32.32.H41", "Lưu: VT"]}') AS edoc \gset
SELECT ioffice.attach(:edoc, 'lien_thong.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:edoc, 'submit', 'dai');
-- not issued yet: nothing to send
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.edxml_build(%s, %L)', :edoc, '000.00.00.G22'), :edoc);
SET ioffice.actor = 'dai';
SELECT ioffice.act(:edoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:edoc, 'issue');

CREATE TEMP TABLE pkg AS SELECT ioffice.edxml_build(:edoc, '000.00.00.G22') AS x;
-- the fields the standard names, where it puts them
SELECT
  xpath_exists('/e:edXML/e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader', x, ns) AS message_header,
  (xpath('//e:MessageHeader/e:From/e:OrganId/text()', x, ns))[1]::text = '000.00.32.H41' AS from_organ,
  (xpath('//e:MessageHeader/e:To/e:OrganId/text()', x, ns))[1]::text = '000.00.00.G22' AS to_organ,
  (xpath('//e:Code/e:CodeNumber/text()', x, ns))[1]::text = d.identifier_number AS code_number,
  d.symbol = (xpath('//e:Code/e:CodeNumber/text()', x, ns))[1]::text || '/'
      || (xpath('//e:Code/e:CodeNotation/text()', x, ns))[1]::text AS code_notation,
  (xpath('//e:PromulgationInfo/e:PromulgationDate/text()', x, ns))[1]::text
      = to_char(d.issued_on, 'YYYY/MM/DD') AS promulgation_date,
  (xpath('//e:MessageHeader/e:Subject/text()', x, ns))[1]::text = d.abstract AS subject_intact,
  (xpath('//e:MessageHeader/e:Subject/text()', x, ns))[1]::text
      = 'V/v liên thông văn bản điện tử với Văn phòng Chính phủ' AS vietnamese_intact,
  (xpath('//e:DocumentType/e:TypeName/text()', x, ns))[1]::text = 'Công văn' AS type_name,
  (xpath('//e:SignerInfo/e:FullName/text()', x, ns))[1]::text = 'Trần Văn Đại' AS signer,
  (xpath('//e:OtherInfo/e:Priority/text()', x, ns))[1]::text = '1' AS priority_urgent,
  (xpath('//e:OtherInfo/e:PageAmount/text()', x, ns))[1]::text = '3' AS page_amount,
  (xpath('//e:MessageHeader/e:SteeringType/text()', x, ns))[1]::text = '1' AS steering_type,
  (xpath('//e:MessageHeader/e:DocumentId/text()', x, ns))[1]::text = d.identifier AS document_id,
  array_length(xpath('//e:ToPlaces/e:Place', x, ns), 1) = 3 AS to_places,
  (xpath('//e:TraceHeaderList/e:Bussiness/e:BussinessDocType/text()', x, ns))[1]::text = '0' AS new_document,
  xpath_exists('//e:TraceHeaderList/e:TraceHeader/e:Timestamp', x, ns) AS trace_header,
  (xpath('//e:edXMLManifest/e:Reference/e:ContentId/text()', x, ns))[1]::text = 'cid:1' AS manifest,
  (xpath('/e:edXML/e:AttachmentEncoded/e:Attachment/e:ContentId/text()', x, ns))[1]::text = 'cid:1' AS attachment,
  decode((xpath('//e:Attachment/e:ContentTransferEncoded/text()', x, ns))[1]::text, 'base64')
      = (SELECT content FROM pdf) AS attachment_bytes,
  (xpath('//e:Attachment/e:ContentType/text()', x, ns))[1]::text = 'application/pdf' AS content_type,
  -- the standard's limits hold
  length((xpath('//e:Code/e:CodeNumber/text()', x, ns))[1]::text) <= 11
  AND length((xpath('//e:Code/e:CodeNotation/text()', x, ns))[1]::text) <= 30
  AND length((xpath('//e:MessageHeader/e:Subject/text()', x, ns))[1]::text) <= 500
  AND length((xpath('//e:From/e:OrganId/text()', x, ns))[1]::text) = 13 AS within_limits,
  -- unsigned: the worker signs it with the seal
  NOT xpath_exists('//ds:Signature', x, ns) AS unsigned
FROM pkg,
     (SELECT ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016'],
                   ARRAY['ds', 'http://www.w3.org/2000/09/xmldsig#']] AS ns) n,
     (SELECT identifier, split_part(split_part(identifier, ',', 3), '/', 1) AS identifier_number,
             symbol, issued_on, abstract
        FROM ioffice.document WHERE id = :edoc) d;
-- the package as text is well-formed XML again (what goes on the wire)
SELECT xml_is_well_formed_document(x::text) AS well_formed FROM pkg;

-- refusals, named
SELECT regress_error(format('SELECT ioffice.edxml_build(%s, %L)', :edoc, '000.00.00.G2'), :edoc);
SELECT regress_error(format('SELECT ioffice.edxml_build(%s, %L)', :edoc, '000.00.01.G22'), :edoc);
SET ioffice.actor = 'regress_luan';
SELECT regress_error(format('SELECT ioffice.edxml_build(%s, %L)', :edoc, '000.00.00.G22'), :edoc);
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.edxml_build(%s, %L)', :edoc, '000.00.00.G22'), :edoc);
-- a field beyond the standard's limit: the field is named
SELECT regress_error('SELECT ioffice._edxml_limit(''Code/CodeNotation'', repeat(''X'', 31), 30)', 0);
RESET ioffice.actor;
-- nothing was received here yet
SELECT count(*) AS statuses FROM ioffice.edxml_status;

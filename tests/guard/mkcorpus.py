#!/usr/bin/env python3
"""Make a realistic, deterministic tree of documents for testing `bulwark guard`.

    python3 tests/guard/mkcorpus.py DIR [--size small|medium|large] [--seed N]
                                        [--manifest FILE] [--no-convert]

DIR must not exist or be empty.  The tree has PDFs (text, some with a
FlateDecode stream), ZIP and DOCX archives (real OOXML parts), JPEG and PNG
images that decode, SQLite databases, plain text, Markdown, CSV, logs, C and
Python sources, a few *.bak / *.old files, 3-4 levels of directories and
names with spaces and UTF-8.  Text is made of words, so its entropy is that
of prose (about 4-5 bits per byte), not of random bytes.

  small   ~200 files, ~20 MiB   (tests; a few seconds)
  medium  ~1000 files, ~200 MiB
  large   medium plus a 200 MiB mailbox and two sparse disk images
          (512 MiB .vhdx and 300 MiB .img, a few written regions each)

The same --seed gives the same bytes (JPEGs come from /usr/bin/convert when it
is there and --no-convert is not given, and then depend on its version).
--manifest FILE writes "sha256  relpath" for every regular file, sorted, so
that `cd DIR && sha256sum --quiet -c FILE` checks byte-for-byte recovery.
Python 3 standard library only.
"""

import argparse
import hashlib
import math
import os
import sqlite3
import struct
import subprocess
import sys
import zipfile
import zlib
import random

WORDS = """
the of and to in is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all we their
has would when if so no will more can who out up into said them about time
some could than its only other new people these also any may first what
report budget invoice customer contract project meeting review quarter sales
revenue forecast account payment order delivery schedule policy employee
manager director team office server backup network system data file record
client service support ticket issue release version update change request
approval signature document draft final summary analysis result market
product price cost margin growth plan target risk audit compliance security
access password user group share folder archive storage disk volume cloud
site branch region north south east west central annual monthly weekly daily
total balance credit debit transfer bank tax rate fee discount amount number
date period start end due overdue paid open closed pending approved rejected
please note attached following previous next below above within without
before after during between against toward regarding concerning because
although however therefore meanwhile furthermore otherwise instead indeed
agreement proposal estimate purchase supplier vendor partner shipment stock
inventory warehouse item quantity unit line detail description reference
important urgent confidential internal external public private personal
morning afternoon evening week month year today tomorrow yesterday deadline
""".split()

UTF8_NAMES = ["Résumé Jürgen", "Übersicht Ausgaben", "año fiscal", "заметки встречи",
              "会议记录", "Æsir ørn", "café menu", "naïve plan", "Ελληνικά σημειώσεις",
              "日本語メモ", "Données clients", "Ünïcödé notes"]

DIRS = {  # directory -> kinds of files that live there
    "Documents/Finance/2023": ["pdf", "csv", "sqlite", "docx", "txt", "bak"],
    "Documents/Finance/2024/Q1": ["pdf", "csv", "docx", "zip"],
    "Documents/HR/Contracts": ["pdf", "docx", "txt", "bak"],
    "Documents/Legal": ["pdf", "docx", "txt"],
    "Projects/website/src": ["py", "c", "md", "txt"],
    "Projects/website/docs": ["md", "pdf", "png"],
    "Projects/bulwark-tools/src/lib": ["c", "py", "md"],
    "Projects/data analysis": ["csv", "py", "sqlite", "png", "log"],
    "Photos/2023/Été à Paris": ["jpg", "png"],
    "Photos/2024/Family": ["jpg"],
    "Scans": ["pdf", "jpg", "png"],
    "Archive/Old Backups": ["zip", "bak", "old", "sqlite"],
    "Archive/2019/Mail": ["txt", "log", "zip"],
    "Shared/Données clients": ["csv", "docx", "pdf", "sqlite"],
    "Shared/会议记录": ["txt", "md", "docx"],
    "Databases": ["sqlite", "csv", "log"],
    "Desktop": ["txt", "pdf", "docx", "jpg", "png", "zip"],
    "Downloads": ["pdf", "zip", "jpg", "png", "txt"],
    "": ["txt", "md"],
}

SIZES = {"small": (200, 20 << 20), "medium": (1000, 200 << 20), "large": (1000, 200 << 20)}
FIXED_TIME = (2024, 1, 1, 0, 0, 0)
KIB, MIB = 1 << 10, 1 << 20


class Words:
    """Prose from a fixed vocabulary: sentences drawn from a seeded pool."""

    def __init__(self, rng):
        self.rng = rng
        self.pool = [self._sentence() for _ in range(3000)]
        self.avg = sum(map(len, self.pool)) / len(self.pool) + 1

    def _sentence(self):
        r = self.rng
        w = r.choices(WORDS, k=r.randint(6, 18))
        if r.random() < 0.3:
            w.insert(r.randrange(len(w)), str(r.randint(2, 99999)))
        s = " ".join(w)
        return s[0].upper() + s[1:] + r.choice([".", ".", ".", "?", "!", ";"])

    def words(self, k):
        return " ".join(self.rng.choices(WORDS, k=k))

    def text(self, n):
        """About n bytes of paragraphs."""
        out, have = [], 0
        while have < n:
            sents = self.rng.choices(self.pool, k=max(1, int((n - have) / self.avg) + 2))
            paras = [" ".join(sents[i:i + 6]) for i in range(0, len(sents), 6)]
            out += paras
            have += sum(len(p) + 2 for p in paras)
        return "\n\n".join(out)[:n] + "\n"

    def lines(self, n, width=90):
        out, total = [], 0
        for s in self.rng.choices(self.pool, k=max(1, int(n / self.avg) + 2)):
            while s:
                cut = s[:width].rfind(" ") if len(s) > width else len(s)
                cut = cut if cut > 0 else min(width, len(s))
                out.append(s[:cut])
                total += cut + 1
                s = s[cut:].lstrip()
            if total >= n:
                break
        return out


# ---- JPEG: baseline, grayscale, standard Huffman tables ---------------------

ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48,
          41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15,
          23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]
QLUM = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
        57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35,
        55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112,
        100, 103, 99]
DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_VALS = list(range(12))
AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d]
AC_VALS = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f0"
    "2433627282090a161718191a25262728292a3435363738393a434445464748494a"
    "535455565758595a636465666768696a737475767778797a838485868788898a"
    "92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6"
    "c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa")


def huff_codes(bits, vals):
    """Annex C: code words as '0'/'1' strings, by symbol."""
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = format(code, "0%db" % length)
            code += 1
            k += 1
        code <<= 1
    return codes


assert sum(AC_BITS) == len(AC_VALS) == 162
assert set(AC_VALS) == {0, 0xF0} | {r << 4 | s for r in range(16) for s in range(1, 11)}
DC_CODES, AC_CODES = huff_codes(DC_BITS, DC_VALS), huff_codes(AC_BITS, AC_VALS)


def vbits(v):
    """Size category and magnitude bits of a coefficient."""
    s = abs(v).bit_length()
    return s, (format(v if v >= 0 else v + (1 << s) - 1, "0%db" % s) if s else "")


COS = [[math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)] for u in range(8)]


def fdct(block):
    """8x8 forward DCT of level-shifted samples (row-major list of 64)."""
    rows = [[sum(block[y * 8 + x] * COS[u][x] for x in range(8)) for u in range(8)]
            for y in range(8)]
    out = [0.0] * 64
    for v in range(8):
        cv = math.sqrt(0.5) if v == 0 else 1.0
        for u in range(8):
            cu = math.sqrt(0.5) if u == 0 else 1.0
            out[v * 8 + u] = 0.25 * cu * cv * sum(rows[y][u] * COS[v][y] for y in range(8))
    return out


class Jpeg:
    """Images made of textured 8x8 blocks whose DCT is computed once; each
    block of an image is one texture at some brightness, so encoding an
    image is only Huffman coding."""

    def __init__(self, rng, quality=85):
        scale = 5000 / quality if quality < 50 else 200 - 2 * quality
        self.q = [min(255, max(1, (t * scale + 50) // 100)) for t in QLUM]
        self.rng = rng
        self.tex = [self._texture(i) for i in range(40)]
        self.avg_bits = sum(len(a) for _, a in self.tex) / len(self.tex) + 6

    def _texture(self, i):
        r = self.rng
        amp, fx, fy = r.uniform(5, 60), r.uniform(0.1, 1.5), r.uniform(0.1, 1.5)
        noise = 4 if i % 3 == 0 else r.uniform(8, 40)
        px = [amp * math.sin(fx * x + fy * y) + r.gauss(0, noise) for y in range(8) for x in range(8)]
        coef = fdct(px)
        zz = [int(round(coef[ZIGZAG[k]] / self.q[ZIGZAG[k]])) for k in range(64)]
        bits, run = [], 0
        for v in zz[1:]:
            v = max(-1023, min(1023, v))
            if v == 0:
                run += 1
                continue
            while run > 15:
                bits.append(AC_CODES[0xF0])
                run -= 16
            s, mag = vbits(v)
            bits.append(AC_CODES[run << 4 | s] + mag)
            run = 0
        if run:
            bits.append(AC_CODES[0x00])
        return zz[0], "".join(bits)

    def encode(self, target):
        r = self.rng
        nblocks = max(4, int(target * 8 / self.avg_bits))
        bw = max(2, min(512, int(math.sqrt(nblocks * 4 / 3))))
        bh = max(2, min(512, nblocks // bw))
        out, prev = [], 0
        for by in range(bh):
            base = 60 * math.sin(by / max(1, bh) * math.pi)
            for bx in range(bw):
                dc0, ac = self.tex[r.randrange(len(self.tex))]
                shift = base + 40 * math.cos(bx / max(1, bw) * 2 * math.pi) + r.uniform(-8, 8)
                dc = int(round(dc0 + 8 * shift / self.q[0]))
                s, mag = vbits(dc - prev)
                out.append(DC_CODES[s] + mag)
                out.append(ac)
                prev = dc
        bits = "".join(out)
        bits += "1" * (-len(bits) % 8)
        scan = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
        return self._headers(bw * 8, bh * 8) + scan + b"\xff\xd9"

    def _headers(self, w, h):
        def seg(marker, body):
            return struct.pack(">HH", marker, len(body) + 2) + body
        dqt = bytes([0]) + bytes(self.q[ZIGZAG[k]] for k in range(64))
        dht = (bytes([0x00]) + bytes(DC_BITS) + bytes(DC_VALS) +
               bytes([0x10]) + bytes(AC_BITS) + AC_VALS)
        return (b"\xff\xd8" + seg(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00") +
                seg(0xFFDB, dqt) + seg(0xFFC0, struct.pack(">BHHBBBB", 8, h, w, 1, 1, 0x11, 0)) +
                seg(0xFFC4, dht) + seg(0xFFDA, bytes([1, 1, 0x00, 0, 63, 0])))


def convert_jpeg(seed, target):
    """A JPEG from ImageMagick's plasma, or None."""
    side = max(16, int(math.sqrt(target / 0.6)))
    try:
        return subprocess.run(["/usr/bin/convert", "-seed", str(seed), "-size", "%dx%d" % (side, side),
                               "plasma:fractal", "-quality", "85", "jpg:-"],
                              check=True, capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None


# ---- other formats ----------------------------------------------------------

def png(rng, target):
    """An RGB PNG: gradient rows with a noisy band, so it compresses about
    as well as a screenshot or a photo would."""
    w = 512
    h = max(8, min(2048, target // 1000))
    noise = min(w * 3, max(0, (target - 200) // h))
    grad = bytes((x * 255 // (w * 3)) & 0xFF for x in range(w * 3))
    rows = []
    for y in range(h):
        start = (y * 7) % (w * 3 - noise + 1) if noise < w * 3 else 0
        rows.append(b"\x00" + grad[:start] + rng.randbytes(noise) + grad[start + noise:])

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))


def pdf(words, rng, target, title):
    compress = rng.random() < 0.5
    per_page = 4500 if not compress else 1900
    npages = max(1, min(3000, target // per_page))
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
            3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            4: ("<< /Title (%s) /Producer (mkcorpus) >>" % pdf_str(title)).encode()}
    kids = []
    for p in range(npages):
        page, content = 5 + 2 * p, 6 + 2 * p
        kids.append("%d 0 R" % page)
        lines = words.lines(per_page if not compress else 4500)[:52]
        text = "BT /F1 10 Tf 56 760 Td 14 TL\n" + "".join(
            "(%s) Tj T*\n" % pdf_str(ln) for ln in lines) + "ET\n"
        data = text.encode()
        if compress:
            data = zlib.compress(data, 6)
            head = b"<< /Length %d /Filter /FlateDecode >>" % len(data)
        else:
            head = b"<< /Length %d >>" % len(data)
        objs[content] = head + b"\nstream\n" + data + b"\nendstream"
        objs[page] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                      b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content)
    objs[2] = ("<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join(kids), npages)).encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    n = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % n
    for num in range(1, n):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n, xref)
    return bytes(out)


def pdf_str(s):
    s = s.encode("latin-1", "replace").decode("latin-1")
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def xml_esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def zip_write(z, name, data, compress=True):
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    z.writestr(info, data)


DOCX_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="jpeg" ContentType="image/jpeg"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/'
    'vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.extended-properties+xml"/></Types>')
DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
    'metadata/core-properties" Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/extended-properties" Target="docProps/app.xml"/></Relationships>')
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx(words, rng, jpeg, target, title):
    image = jpeg(target // 2) if target > 64 * KIB else None
    text_bytes = (target - (len(image) if image else 0)) * 3
    paras = words.text(max(500, text_bytes)).split("\n\n")
    body = "".join('<w:p><w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>' % xml_esc(p)
                   for p in paras)
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="%s">'
           '<w:body><w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>%s</w:t></w:r></w:p>'
           '%s<w:sectPr/></w:body></w:document>' % (W_NS, xml_esc(title), body))
    core = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>%s</dc:title>'
            '<dc:creator>%s</dc:creator></cp:coreProperties>'
            % (xml_esc(title), xml_esc(words.words(2).title())))
    app = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties xmlns="http://'
           'schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
           '<Application>mkcorpus</Application></Properties>')
    buf = BytesSink()
    with zipfile.ZipFile(buf, "w") as z:
        zip_write(z, "[Content_Types].xml", DOCX_TYPES)
        zip_write(z, "_rels/.rels", DOCX_RELS)
        zip_write(z, "word/document.xml", doc)
        if image:
            zip_write(z, "word/_rels/document.xml.rels",
                      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
                      'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                      '<Relationship Id="rId10" Type="http://schemas.openxmlformats.org/'
                      'officeDocument/2006/relationships/image" Target="media/image1.jpeg"/>'
                      '</Relationships>')
            zip_write(z, "word/media/image1.jpeg", image, compress=False)
        zip_write(z, "docProps/core.xml", core)
        zip_write(z, "docProps/app.xml", app)
    return buf.getvalue()


def zip_archive(words, rng, jpeg, target):
    buf = BytesSink()
    with zipfile.ZipFile(buf, "w") as z:
        left, i = target, 0
        while left > 0 or i == 0:
            i += 1
            kind = rng.choice(["txt", "csv", "jpg"]) if left > 16 * KIB else "txt"
            part = min(left, rng.randint(8 * KIB, 512 * KIB))
            if kind == "jpg":
                data = jpeg(part)
                zip_write(z, "photos/IMG_%04d.jpg" % rng.randint(1, 9999), data, compress=False)
                left -= len(data)
            else:
                data = words.text(part * 3) if kind == "txt" else csv_text(words, rng, part * 3)
                zip_write(z, "%s-%d.%s" % (words.words(1), i, kind), data)
                left -= part
    return buf.getvalue()


class BytesSink:
    """A minimal in-memory file that zipfile can write to."""

    def __init__(self):
        self.data, self.pos = bytearray(), 0

    def write(self, b):
        end = self.pos + len(b)
        self.data[self.pos:end] = b
        self.pos = end
        return len(b)

    def tell(self):
        return self.pos

    def seek(self, pos, whence=0):
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else len(self.data) + pos)
        return self.pos

    def flush(self):
        pass

    def getvalue(self):
        return bytes(self.data)


CITIES = ["Paris", "Berlin", "Lyon", "Madrid", "Zürich", "København", "Kraków", "Oslo", "Porto",
          "Québec", "São Paulo", "Toronto", "Austin", "Leeds"]


def csv_text(words, rng, target):
    out = ["id,date,customer,city,amount,status,memo"]
    total, i = 0, 0
    while total < target:
        i += 1
        line = '%d,2024-%02d-%02d,%s,%s,%d.%02d,%s,"%s"' % (
            i, rng.randint(1, 12), rng.randint(1, 28), words.words(2).title(), rng.choice(CITIES),
            rng.randint(1, 99999), rng.randint(0, 99),
            rng.choice(["paid", "open", "overdue", "void"]), words.words(rng.randint(2, 8)))
        out.append(line)
        total += len(line) + 1
    return "\n".join(out) + "\n"


def log_text(words, rng, target):
    out, total, t = [], 0, 1704067200
    while total < target:
        t += rng.randint(0, 90)
        tm = "2024-%02d-%02d %02d:%02d:%02d" % (1 + t // 2592000 % 12, 1 + t // 86400 % 28,
                                                 t // 3600 % 24, t // 60 % 60, t % 60)
        line = "%s %s %s[%d]: %s" % (tm, rng.choice(["INFO", "INFO", "WARN", "ERROR", "DEBUG"]),
                                     rng.choice(["backupd", "sshd", "cron", "nginx", "agent"]),
                                     rng.randint(100, 65000), words.words(rng.randint(4, 14)))
        out.append(line)
        total += len(line) + 1
    return "\n".join(out) + "\n"


def md_text(words, rng, target):
    out, total = ["# " + words.words(4).title(), ""], 0
    while total < target:
        part = [("## " + words.words(3).title()), "", words.text(rng.randint(300, 1500)).strip(), ""]
        part += ["- " + words.words(rng.randint(3, 9)) for _ in range(rng.randint(2, 6))] + [""]
        out += part
        total += sum(len(p) + 1 for p in part)
    return "\n".join(out)


def ident(rng):
    return "_".join(rng.choices([w for w in WORDS if len(w) > 2], k=rng.randint(1, 3)))


def c_source(words, rng, target):
    out = ["/* %s */" % words.text(200).strip().replace("*/", ""), "#include <stddef.h>",
           "#include <stdint.h>", ""]
    total = 0
    while total < target:
        name, field, typ = ident(rng), ident(rng), ident(rng)
        fn = ("/* %s */\nstatic int %s(const struct %s *v, size_t n)\n{\n\tint r = 0;\n\n"
              "\tfor (size_t i = 0; i < n; i++) {\n\t\tif (v[i].%s > %d)\n\t\t\tr += v[i].%s;\n"
              "\t\telse if (v[i].%s == %d)\n\t\t\treturn -%d;\n\t}\n\treturn r;\n}\n"
              % (words.words(rng.randint(5, 14)), name, typ, field, rng.randint(0, 4096), field,
                 field, rng.randint(0, 64), rng.randint(1, 40)))
        out.append(fn)
        total += len(fn)
    return "\n".join(out)


def py_source(words, rng, target):
    out = ['"""%s"""' % words.text(200).strip().replace('"""', ""), "import os", "import sys", ""]
    total = 0
    while total < target:
        name, arg = ident(rng), ident(rng)
        fn = ('\ndef %s(%s, limit=%d):\n    """%s."""\n    total = 0\n    for item in %s:\n'
              '        if item.get("%s", 0) > limit:\n            total += item["%s"]\n'
              '    return total\n' % (name, arg, rng.randint(0, 999), words.words(rng.randint(4, 12)),
                                      arg, ident(rng), ident(rng)))
        out.append(fn)
        total += len(fn)
    return "\n".join(out)


def sqlite_db(path, words, rng, target):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.executescript("""
        CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, since TEXT);
        CREATE TABLE invoices(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customers(id),
                              amount REAL, due TEXT, memo TEXT);
        CREATE TABLE notes(id INTEGER PRIMARY KEY, customer INTEGER, body TEXT);
        CREATE INDEX invoices_customer ON invoices(customer);""")
    ncust = max(5, target // 1200)
    db.executemany("INSERT INTO customers VALUES(?,?,?,?,?)", [
        (i, words.words(2).title(), "%s@example.com" % ident(rng), rng.choice(CITIES),
         "20%02d-%02d-01" % (rng.randint(10, 24), rng.randint(1, 12))) for i in range(1, ncust + 1)])
    db.executemany("INSERT INTO invoices VALUES(?,?,?,?,?)", [
        (i, rng.randint(1, ncust), rng.randint(100, 10 ** 6) / 100,
         "2024-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28)), words.words(rng.randint(3, 10)))
        for i in range(1, 4 * ncust + 1)])
    db.executemany("INSERT INTO notes VALUES(?,?,?)", [
        (i, rng.randint(1, ncust), words.text(rng.randint(100, 600))) for i in range(1, ncust + 1)])
    db.commit()
    db.close()


# ---- the tree -----------------------------------------------------------------

EXT = {"txt": ".txt", "md": ".md", "csv": ".csv", "log": ".log", "c": ".c", "py": ".py",
       "pdf": ".pdf", "docx": ".docx", "zip": ".zip", "jpg": ".jpg", "png": ".png",
       "sqlite": ".db"}


class Corpus:
    def __init__(self, root, seed, use_convert):
        self.root, self.seed = root, seed
        self.rng = random.Random(seed)
        self.words = Words(self.rng)
        self.jpeg_enc = Jpeg(self.rng)
        self.use_convert = use_convert and os.access("/usr/bin/convert", os.X_OK)
        self.names = set()
        self.count = 0

    def jpeg(self, target):
        if self.use_convert:
            data = convert_jpeg(self.rng.randrange(1 << 30), target)
            if data:
                return data
        return self.jpeg_enc.encode(target)

    def content(self, kind, path, target, title):
        w, r = self.words, self.rng
        if kind == "sqlite":
            sqlite_db(path, w, r, target)
            return None
        makers = {
            "txt": lambda: w.text(target), "md": lambda: md_text(w, r, target),
            "csv": lambda: csv_text(w, r, target), "log": lambda: log_text(w, r, target),
            "c": lambda: c_source(w, r, target), "py": lambda: py_source(w, r, target),
            "pdf": lambda: pdf(w, r, target, title), "jpg": lambda: self.jpeg(target),
            "png": lambda: png(r, target), "zip": lambda: zip_archive(w, r, self.jpeg, target),
            "docx": lambda: docx(w, r, self.jpeg, target, title)}
        data = makers[kind]()
        return data.encode("utf-8") if isinstance(data, str) else data

    def name(self, d, kind, backup):
        r = self.rng
        for attempt in range(100):
            roll = r.random()
            if roll < 0.12:
                base = r.choice(UTF8_NAMES)
            elif roll < 0.45:
                base = self.words.words(r.randint(2, 4)).title()
            elif roll < 0.6 and kind == "jpg":
                base = "IMG_%04d" % r.randint(1, 9999)
            else:
                base = "-".join(self.words.words(r.randint(1, 3)).split())
            if attempt or r.random() < 0.3:
                base += " %d" % r.randint(2, 2024) if " " in base else "_%d" % r.randint(1, 999)
            name = base + EXT[kind] + backup
            if (d, name) not in self.names:
                self.names.add((d, name))
                return name
        raise RuntimeError("no free name")

    def write(self, rel, data, mtime):
        path = os.path.join(self.root, rel)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        os.utime(path, (mtime, mtime))
        self.count += 1

    def files(self, nfiles, total):
        r = self.rng
        raw = [math.exp(r.uniform(math.log(KIB), math.log(MIB))) * (4 if r.random() < 0.08 else 1)
               for _ in range(nfiles)]
        scale = total / sum(raw)
        dirs = sorted(DIRS)
        for d in dirs:
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        for i, size in enumerate(raw):
            d = dirs[i % len(dirs)] if i < len(dirs) else r.choice(dirs)
            kind = r.choice(DIRS[d])
            backup = ""
            if kind in ("bak", "old"):
                backup, kind = "." + kind, r.choice(["docx", "pdf", "sqlite", "csv", "zip"])
            target = max(KIB, int(size * scale))
            name = self.name(d, kind, backup)
            rel = os.path.join(d, name)
            title = name.rsplit(".", 1)[0]
            data = self.content(kind, os.path.join(self.root, rel), target, title)
            self.write(rel, data, 1704067200 + r.randrange(2 * 365 * 86400))

    def large(self):
        r = self.rng
        os.makedirs(os.path.join(self.root, "VM Images"), exist_ok=True)
        for rel, size in (("VM Images/win-server.vhdx", 512 * MIB), ("VM Images/disk0.img", 300 * MIB)):
            path = os.path.join(self.root, rel)
            with open(path, "wb") as f:
                f.truncate(size)
                for off in (0, size // 3, size * 2 // 3, size - MIB):
                    f.seek(off)
                    f.write(r.randbytes(MIB))
            self.write(rel, None, 1704067200)
        with open(os.path.join(self.root, "Archive/2019/Mail/export.mbox"), "wb") as f:
            for _ in range(50):
                f.write(self.words.text(4 * MIB).encode())
        self.write("Archive/2019/Mail/export.mbox", None, 1704067200)


def manifest(root, path):
    lines = []
    for d, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in files:
            full = os.path.join(d, name)
            if os.path.islink(full) or not os.path.isfile(full) or os.path.abspath(full) == os.path.abspath(path):
                continue
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(MIB), b""):
                    h.update(block)
            lines.append((os.path.relpath(full, root), h.hexdigest()))
    lines.sort()
    with open(path, "w", encoding="utf-8") as f:
        f.writelines("%s  %s\n" % (h, rel) for rel, h in lines)
    return len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--manifest", metavar="FILE")
    ap.add_argument("--no-convert", action="store_true", help="always use the built-in JPEG encoder")
    a = ap.parse_args()
    if os.path.exists(a.dir) and (not os.path.isdir(a.dir) or os.listdir(a.dir)):
        sys.exit("mkcorpus: %s exists and is not an empty directory" % a.dir)
    os.makedirs(a.dir, exist_ok=True)
    c = Corpus(a.dir, a.seed, not a.no_convert)
    nfiles, total = SIZES[a.size]
    c.files(nfiles, total)
    if a.size == "large":
        c.large()
    if a.manifest:
        manifest(a.dir, a.manifest)
    print("mkcorpus: %d files in %s (%s, seed %d)" % (c.count, a.dir, a.size, a.seed))


if __name__ == "__main__":
    main()

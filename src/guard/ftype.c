/* File types from their first bytes, for the content analysis: magic
 * numbers checked together with neighbouring fields that are cheap to
 * check (so that random bytes are almost never taken for a known type),
 * text detection, and which types are containers benign tools produce. */
#include "analyze_int.h"

#include <stdlib.h>

double bw_entropy(const uint8_t *p, size_t n)
{
	uint64_t h[256] = {0};
	for (size_t i = 0; i < n; i++)
		h[p[i]]++;
	double e = hist_entropy(h, 256, n);
	return e > 8.0 ? 8.0 : e;
}

/* ---- text ---------------------------------------------------------------- */

/* Length of the strict UTF-8 sequence at p (no overlongs, surrogates or
 * code points past U+10FFFF): > 0 valid, 0 invalid, -1 cut off by the end
 * of the window but valid so far. */
static int utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	int len;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		uint8_t b = p[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return 0;
	}
	return len;
}

static int utf16_text(const uint8_t *p, size_t n, int le)
{
	size_t units = n / 2, bad = 0;
	for (size_t i = 0; i < units; i++) {
		unsigned u = le ? an_le16(p + 2 * i) : an_be16(p + 2 * i);
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 1 == units)
				break; /* cut off by the window */
			unsigned v = le ? an_le16(p + 2 * i + 2)
			                : an_be16(p + 2 * i + 2);
			if (v >= 0xdc00 && v <= 0xdfff)
				i++;
			else
				bad++;
		} else if ((u >= 0xdc00 && u <= 0xdfff) || u >= 0xfffe ||
		           (u < 0x20 && u != '\t' && u != '\n' && u != '\r'))
			bad++;
	}
	/* strict: random units after a chance BOM have ~3% bad ones */
	return bad * 256 <= units;
}

/* Text: no NUL, and either UTF-8 with at most 5% controls or invalid
 * bytes, or a single-byte code page (Latin-1, CP1252...) with at most 2%
 * controls and 40% high bytes.  Random bytes have 11% controls and a NUL
 * in every 256 bytes, so they fail both from a few hundred bytes on. */
static int is_text(const uint8_t *p, size_t n)
{
	size_t lim = n < TEXT_SCAN ? n : TEXT_SCAN, bad = 0, ctl = 0, high = 0;
	size_t i = 0;
	if (lim >= 2 && ((p[0] == 0xff && p[1] == 0xfe) ||
	                 (p[0] == 0xfe && p[1] == 0xff)))
		return utf16_text(p + 2, lim - 2, p[0] == 0xff);
	while (i < lim) {
		uint8_t c = p[i];
		if (c == 0)
			return 0;
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' &&
			     c != '\f' && c != '\v' && c != 0x1b) ||
			    c == 0x7f)
				ctl++;
			i++;
			continue;
		}
		high++;
		int k = utf8_seq(p + i, lim - i);
		if (k < 0)
			break;
		if (k == 0) {
			bad++;
			i++;
			continue;
		}
		if (c == 0xc2 && p[i + 1] < 0xa0)
			bad++; /* C1 control */
		high += (size_t)k - 1;
		i += (size_t)k;
	}
	return (ctl + bad) * 20 <= lim ||
	       (ctl * 50 <= lim && high * 10 <= lim * 4);
}

/* ---- OpenPGP ------------------------------------------------------------- */

static int pgp_sym_ok(uint8_t a)
{
	return (a >= 1 && a <= 4) || (a >= 7 && a <= 13);
}

static int pgp_pk_ok(uint8_t a)
{
	return (a >= 1 && a <= 3) || (a >= 16 && a <= 20) || a == 22 ||
	       (a >= 25 && a <= 28);
}

static int pgp_hash_ok(uint8_t a)
{
	return (a >= 1 && a <= 3) || (a >= 8 && a <= 12) || a == 14;
}

static int pgp_sigtype_ok(uint8_t t)
{
	return t <= 0x02 || (t >= 0x10 && t <= 0x13) || t == 0x18 ||
	       t == 0x19 || t == 0x1f || t == 0x20 || t == 0x28 || t == 0x30 ||
	       t == 0x40 || t == 0x50;
}

/* The first block header of a deflate stream p[0..n) that is part of an
 * input of total bytes.  Real compressors start a stream of any size
 * with a dynamic-Huffman block, whose code-length code must be complete
 * (zlib rejects it otherwise): random bytes pass about once in 3,000.
 * Fixed-Huffman blocks only start tiny streams. */
struct bits {
	const uint8_t *p;
	size_t pos; /* in bits; the caller ensures there are enough */
};

static unsigned bits_get(struct bits *b, unsigned k)
{
	unsigned v = 0;
	for (unsigned j = 0; j < k; j++, b->pos++)
		v |= (unsigned)((b->p[b->pos / 8] >> (b->pos % 8)) & 1) << j;
	return v;
}

static int deflate_ok(const uint8_t *p, size_t n, size_t total)
{
	static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
	                                  11, 4,  12, 3, 13, 2, 14, 1, 15};
	uint8_t lens[19] = {0};
	struct bits b = {p, 0};
	if (n == 0)
		return 0;
	unsigned type = bits_get(&b, 3) >> 1;
	if (type == 1)
		return total < 512;
	if (type != 2 || n < 10) /* 3 + 14 + 19 * 3 bits */
		return 0;
	unsigned hlit = bits_get(&b, 5), hdist = bits_get(&b, 5),
	         hclen = bits_get(&b, 4) + 4;
	if (hlit > 29 || hdist > 29)
		return 0;
	for (unsigned i = 0; i < hclen; i++)
		lens[order[i]] = (uint8_t)bits_get(&b, 3);
	unsigned kraft = 0;
	for (int i = 0; i < 19; i++)
		if (lens[i])
			kraft += 128u >> lens[i];
	return kraft == 128;
}

/* The start of a v4 key's material at k: the algorithm, then an MPI
 * (bit count, and a first byte whose top bit matches it) or a curve OID
 * (length, first byte).  Random bytes pass one time in a few hundred. */
static int pgp_key_material(const uint8_t *k)
{
	if (k[0] == 18 || k[0] == 19 || k[0] == 22)
		return (k[1] == 5 || (k[1] >= 8 && k[1] <= 10)) &&
		       (k[2] == 0x2b || k[2] == 0x2a);
	if ((k[0] >= 1 && k[0] <= 3) || k[0] == 16 || k[0] == 17 || k[0] == 20) {
		unsigned bits = an_be16(k + 1);
		return bits >= 512 && bits <= 16384 &&
		       (k[3] >> ((bits - 1) % 8)) == 1;
	}
	return 0;
}

/* The first packet of an OpenPGP file as gpg writes it: encrypted
 * (PKESK, SKESK), signed, compressed, or a key.  The version and
 * algorithm fields are checked so that random bytes (any first byte with
 * the top bit set) are taken for OpenPGP about once in 10^5. */
static int pgp_packet(const uint8_t *p, size_t n)
{
	unsigned tag;
	size_t hl;
	if (n < 12 || !(p[0] & 0x80))
		return 0;
	if (p[0] & 0x40) {
		tag = p[0] & 0x3f;
		hl = p[1] < 192 ? 2 : p[1] < 224 ? 3 : p[1] == 255 ? 6 : 0;
		if (!hl)
			return 0; /* partial length: not a first packet */
	} else {
		static const size_t lens[4] = {2, 3, 5, 1};
		tag = (p[0] >> 2) & 0x0f;
		hl = lens[p[0] & 3];
	}
	/* the most any case below reads: 9 bytes after the header */
	if (n < hl + 10)
		return 0;
	const uint8_t *b = p + hl;
	switch (tag) {
	case 1: /* public-key encrypted session key, v3: id, algorithm */
		return b[0] == 3 && pgp_pk_ok(b[9]);
	case 2: /* signature */
		if (b[0] == 4 || b[0] == 5 || b[0] == 6)
			return pgp_sigtype_ok(b[1]) && pgp_pk_ok(b[2]) &&
			       pgp_hash_ok(b[3]);
		return b[0] == 3 && b[1] == 5 && pgp_sigtype_ok(b[2]);
	case 3: /* symmetric-key encrypted session key */
		if (b[0] == 4)
			return pgp_sym_ok(b[1]) && b[2] <= 4 && b[2] != 2 &&
			       pgp_hash_ok(b[3]);
		if (b[0] == 5)
			return pgp_sym_ok(b[1]) && b[2] >= 1 && b[2] <= 3;
		if (b[0] == 6)
			return pgp_sym_ok(b[2]) && b[3] >= 1 && b[3] <= 3;
		return 0;
	case 4: /* one-pass signature */
		return (b[0] == 3 || b[0] == 6) && pgp_sigtype_ok(b[1]) &&
		       pgp_hash_ok(b[2]) && pgp_pk_ok(b[3]);
	case 5: /* secret key */
	case 6: /* public key (a keyring): v4, time, algorithm, then its
	         * first field must be consistent with the algorithm */
		return b[0] == 4 && pgp_key_material(b + 5);
	case 8: /* compressed data, as gpg writes it (indeterminate length) */
		if (p[0] != 0xa3 && p[0] != 0xc8)
			return 0;
		if (b[0] == 1) /* raw deflate */
			return deflate_ok(b + 1, n - hl - 1, n);
		if (b[0] == 2) /* zlib */
			return (b[1] & 0x0f) == 8 && (b[1] << 8 | b[2]) % 31 == 0 &&
			       deflate_ok(b + 3, n - hl - 3, n);
		return b[0] == 3 && !memcmp(b + 1, "BZh", 3);
	default:
		return 0;
	}
}

/* ---- other magics with checked fields ------------------------------ */

static int tar_header(const uint8_t *p, size_t n)
{
	if (n < 512 || memcmp(p + 257, "ustar", 5) ||
	    (p[262] != 0 && p[262] != ' '))
		return 0;
	uint32_t want = 0, sum = 0;
	size_t i = 148;
	while (i < 156 && p[i] == ' ')
		i++;
	size_t digits = 0;
	for (; i < 156 && p[i] >= '0' && p[i] <= '7'; i++, digits++)
		want = want * 8 + (uint32_t)(p[i] - '0');
	if (!digits)
		return 0;
	for (i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : p[i];
	return sum == want;
}

static int pg_page(const uint8_t *p, size_t n)
{
	if (n < 24)
		return 0;
	unsigned flags = an_le16(p + 10), lower = an_le16(p + 12),
	         upper = an_le16(p + 14), special = an_le16(p + 16),
	         psv = an_le16(p + 18), size = psv & 0xff00;
	return (psv & 0xff) == 4 && size >= 1024 && (size & (size - 1)) == 0 &&
	       flags <= 7 && lower >= 24 && lower <= upper &&
	       upper <= special && special <= size;
}

static int mp4_box(const uint8_t *p, size_t n)
{
	static const char *const boxes[] = {"moov", "mdat", "free", "skip",
	                                    "wide", "pnot"};
	if (n < 12 || p[0] != 0)
		return 0;
	uint32_t size = an_be32(p);
	if (HAS(4, "ftyp")) {
		for (int i = 8; i < 12; i++)
			if (p[i] < 0x20 || p[i] > 0x7e)
				return 0;
		return size >= 12 && size <= 4096;
	}
	for (size_t i = 0; i < sizeof boxes / sizeof *boxes; i++)
		if (has(p, n, 4, boxes[i], 4) && (size >= 8 || size == 1))
			return 1;
	return 0;
}

static int riff(const uint8_t *p, size_t n)
{
	if (!HAS(0, "RIFF") || n < 12)
		return 0;
	for (int i = 8; i < 12; i++) {
		uint8_t c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == ' '))
			return 0;
	}
	return 1;
}

static int bmp(const uint8_t *p, size_t n)
{
	if (!HAS(0, "BM") || n < 18 || get_le32(p + 6) != 0)
		return 0;
	uint32_t off = get_le32(p + 10), dib = get_le32(p + 14);
	return off >= 26 && off <= (1u << 20) &&
	       (dib == 12 || dib == 40 || dib == 52 || dib == 56 ||
	        dib == 64 || dib == 108 || dib == 124);
}

static int pe_exe(const uint8_t *p, size_t n)
{
	if (!HAS(0, "MZ") || n < 64)
		return 0;
	uint32_t off = get_le32(p + 0x3c);
	return off >= 4 && has(p, n, off, "PE\0\0", 4);
}

static int id3(const uint8_t *p, size_t n)
{
	return HAS(0, "ID3") && n >= 10 && p[3] >= 2 && p[3] <= 4 &&
	       p[4] != 0xff && (p[5] & 0x0f) == 0 && p[6] < 0x80 &&
	       p[7] < 0x80 && p[8] < 0x80 && p[9] < 0x80;
}

/* A PEM block: "-----BEGIN " LABEL "-----" on the first line. */
static int pem(const uint8_t *p, size_t n)
{
	if (!HAS(0, "-----BEGIN "))
		return 0;
	for (size_t i = 11; i < n && i < 80; i++) {
		uint8_t c = p[i];
		if (c == '-')
			return i > 11 && has(p, n, i, "-----", 5);
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ' '))
			return 0;
	}
	return 0;
}

enum bw_ftype bw_ftype_detect(const uint8_t *p, size_t n)
{
	if (!p || n == 0)
		return BW_FT_EMPTY;
	if (n > EDGE)
		n = EDGE;
	if (HAS(0, "%PDF-"))
		return BW_FT_PDF;
	if (HAS(0, "PK\3\4") || HAS(0, "PK\5\6") || HAS(0, "PK\7\x08"))
		return BW_FT_ZIP;
	if (HAS(0, "\xff\xd8\xff"))
		return BW_FT_JPEG;
	if (HAS(0, "\x89PNG\r\n\x1a\n"))
		return BW_FT_PNG;
	if (HAS(0, "GIF87a") || HAS(0, "GIF89a"))
		return BW_FT_GIF;
	if (HAS(0, "SQLite format 3\0"))
		return BW_FT_SQLITE;
	if (HAS(0, "\x7f" "ELF"))
		return BW_FT_ELF;
	if (HAS(0, "\x1f\x8b\x08"))
		return BW_FT_GZIP;
	if (HAS(0, "\x28\xb5\x2f\xfd") ||
	    (n >= 4 && (p[0] & 0xf0) == 0x50 && HAS(1, "\x2a\x4d\x18")))
		return BW_FT_ZSTD;
	if (HAS(0, "\xfd" "7zXZ\0"))
		return BW_FT_XZ;
	if (HAS(0, "BZh") && n >= 10 && p[3] >= '1' && p[3] <= '9' &&
	    (HAS(4, "\x31\x41\x59\x26\x53\x59") ||
	     HAS(4, "\x17\x72\x45\x38\x50\x90")))
		return BW_FT_BZIP2;
	if (HAS(0, "7z\xbc\xaf\x27\x1c"))
		return BW_FT_7Z;
	if (HAS(0, "Rar!\x1a\x07\0") || HAS(0, "Rar!\x1a\x07\x01\0"))
		return BW_FT_RAR;
	if (HAS(0, "age-encryption.org/v1\n") ||
	    HAS(0, "-----BEGIN AGE ENCRYPTED FILE-----"))
		return BW_FT_AGE;
	if (HAS(0, "-----BEGIN PGP "))
		return BW_FT_GPG;
	if (HAS(0, "BORG_SEG"))
		return BW_FT_BORG;
	if (HAS(0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"))
		return BW_FT_OLE;
	if ((HAS(0, "\x04\x22\x4d\x18") && n >= 5 && (p[4] >> 6) == 1) ||
	    HAS(0, "\x02\x21\x4c\x18"))
		return BW_FT_LZ4;
	if (HAS(0, "PACK\0\0\0\x02") || HAS(0, "PACK\0\0\0\x03"))
		return BW_FT_GIT_PACK;
	if (HAS(0, "\x03\xd9\xa2\x9a") &&
	    (HAS(4, "\x67\xfb\x4b\xb5") || HAS(4, "\x66\xfb\x4b\xb5") ||
	     HAS(4, "\x65\xfb\x4b\xb5")))
		return BW_FT_KDBX;
	if (HAS(0, "II*\0") || HAS(0, "MM\0*") || HAS(0, "II+\0") ||
	    HAS(0, "MM\0+"))
		return BW_FT_TIFF;
	if (riff(p, n))
		return BW_FT_RIFF;
	if (HAS(0, "OggS\0"))
		return BW_FT_OGG;
	if (HAS(0, "fLaC") && n >= 5 && (p[4] & 0x7f) == 0)
		return BW_FT_FLAC;
	if (HAS(0, "\x1a\x45\xdf\xa3"))
		return BW_FT_MKV;
	if (id3(p, n))
		return BW_FT_MP3;
	if (HAS(0, "!BDN") && HAS(8, "SM"))
		return BW_FT_PST;
	if (HAS(0, "AC10") && n >= 7 && p[4] >= '0' && p[4] <= '3' &&
	    p[5] >= '0' && p[5] <= '9' && p[6] == 0)
		return BW_FT_DWG;
	if (HAS(0, "\0\1\0\0Standard Jet DB") ||
	    HAS(0, "\0\1\0\0Standard ACE DB"))
		return BW_FT_ACCESS;
	if (bmp(p, n))
		return BW_FT_BMP;
	if (pe_exe(p, n))
		return BW_FT_PE;
	if (mp4_box(p, n))
		return BW_FT_MP4;
	if (pgp_packet(p, n))
		return BW_FT_GPG;
	/* only what zlib writes (window 32 KiB, a checked first block): the
	 * 2-byte header alone would match one random file in 2,600 */
	if (n >= 3 && p[0] == 0x78 &&
	    (p[1] == 0x01 || p[1] == 0x5e || p[1] == 0x9c || p[1] == 0xda) &&
	    deflate_ok(p + 2, n - 2, n))
		return BW_FT_ZLIB;
	if (tar_header(p, n))
		return BW_FT_TAR;
	if (pg_page(p, n))
		return BW_FT_PG;
	if (pem(p, n))
		return BW_FT_PEM;
	if (is_text(p, n))
		return BW_FT_TEXT;
	return BW_FT_UNKNOWN;
}

static const char *const ftype_names[BW_FT_NTYPES] = {
	[BW_FT_EMPTY] = "empty",   [BW_FT_UNKNOWN] = "unknown",
	[BW_FT_TEXT] = "text",     [BW_FT_PDF] = "pdf",
	[BW_FT_ZIP] = "zip",       [BW_FT_JPEG] = "jpeg",
	[BW_FT_PNG] = "png",       [BW_FT_GIF] = "gif",
	[BW_FT_SQLITE] = "sqlite", [BW_FT_ELF] = "elf",
	[BW_FT_GZIP] = "gzip",     [BW_FT_ZSTD] = "zstd",
	[BW_FT_XZ] = "xz",         [BW_FT_BZIP2] = "bzip2",
	[BW_FT_7Z] = "7z",         [BW_FT_RAR] = "rar",
	[BW_FT_GPG] = "gpg",       [BW_FT_AGE] = "age",
	[BW_FT_BORG] = "borg",     [BW_FT_TAR] = "tar",
	[BW_FT_MP4] = "mp4",       [BW_FT_OLE] = "ole",
	[BW_FT_PG] = "postgres",   [BW_FT_LZ4] = "lz4",
	[BW_FT_ZLIB] = "zlib",     [BW_FT_GIT_PACK] = "git-pack",
	[BW_FT_PEM] = "pem",       [BW_FT_KDBX] = "kdbx",
	[BW_FT_PE] = "pe",         [BW_FT_TIFF] = "tiff",
	[BW_FT_BMP] = "bmp",       [BW_FT_RIFF] = "riff",
	[BW_FT_OGG] = "ogg",       [BW_FT_FLAC] = "flac",
	[BW_FT_MKV] = "mkv",       [BW_FT_MP3] = "mp3",
	[BW_FT_PST] = "pst",       [BW_FT_DWG] = "dwg",
	[BW_FT_ACCESS] = "access",
};

const char *bw_ftype_name(enum bw_ftype t)
{
	if ((unsigned)t >= BW_FT_NTYPES || !ftype_names[t])
		return "?";
	return ftype_names[t];
}

int bw_ftype_is_container(enum bw_ftype t)
{
	switch (t) {
	case BW_FT_ZIP: case BW_FT_GZIP: case BW_FT_ZSTD: case BW_FT_XZ:
	case BW_FT_BZIP2: case BW_FT_7Z: case BW_FT_RAR: case BW_FT_GPG:
	case BW_FT_AGE: case BW_FT_BORG: case BW_FT_TAR: case BW_FT_LZ4:
	case BW_FT_ZLIB: case BW_FT_GIT_PACK: case BW_FT_PEM: case BW_FT_KDBX:
		return 1;
	default:
		return 0;
	}
}

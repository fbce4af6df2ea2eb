/* Content analysis for the ransomware guard (file types are in ftype.c):
 * entropy, base64/hex detection, and the sampled old-versus-new
 * comparison that yields the "destroyed by encryption" verdict.
 *
 * Why sampling works: ransomware must make the file unreadable cheaply,
 * so it either encrypts everything, or the head (where the magic and the
 * index live), or regular stripes or chunks of it.  All of these show in
 * the first 64 KiB plus a few dozen evenly spaced 4 KiB blocks plus the
 * last 64 KiB, and reading those costs the same for a 1 KiB and a 100 GiB
 * file.  Why compare with the old version rather than judge the new one
 * alone: a JPEG or a zip is as random as ciphertext; what gives
 * encryption away is what changed: the magic, a structure the format
 * guarantees, or the entropy of exactly the bytes that were rewritten. */
#include "analyze_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A type whose loss means the file was damaged: a recognised binary
 * format.  Text is not one: a text file becoming binary is judged by
 * entropy, since ciphertext has no magic to lose. */
static int ftype_known(enum bw_ftype t)
{
	return t != BW_FT_EMPTY && t != BW_FT_UNKNOWN && t != BW_FT_TEXT;
}

/* ---- format structure ------------------------------------------------------ */

/* Walk the PNG chunks in the head: IHDR first, names of four letters,
 * CRC of every chunk that lies wholly in the buffer. */
static int png_ok(const uint8_t *p, size_t n)
{
	size_t pos = 8;
	int first = 1;
	while (pos + 8 <= n) {
		uint32_t len = an_be32(p + pos);
		const uint8_t *type = p + pos + 4;
		if (len > 0x7fffffffu)
			return 0;
		for (int i = 0; i < 4; i++)
			if (!((type[i] >= 'A' && type[i] <= 'Z') ||
			      (type[i] >= 'a' && type[i] <= 'z')))
				return 0;
		if (first && (memcmp(type, "IHDR", 4) || len != 13))
			return 0;
		first = 0;
		if ((uint64_t)len + 12 > n - pos)
			break; /* continues past the head: cannot check */
		if (crc32_calc(type, (size_t)len + 4) !=
		    an_be32(p + pos + 8 + len))
			return 0;
		if (!memcmp(type, "IEND", 4))
			break;
		pos += (size_t)len + 12;
	}
	return !first || n < 16;
}

/* Walk the JPEG marker segments from SOI to the first SOS.  Returns 1 if
 * the chain is sound as far as the buffer goes, 0 if not; *scan is where
 * entropy-coded data starts (n if not reached). */
static int jpeg_walk(const uint8_t *p, size_t n, size_t *scan)
{
	size_t pos = 2;
	*scan = n;
	for (;;) {
		if (pos >= n)
			return 1;
		if (p[pos] != 0xff)
			return 0;
		while (pos < n && p[pos] == 0xff)
			pos++; /* fill bytes */
		if (pos >= n)
			return 1;
		uint8_t m = p[pos++];
		if (m == 0x00 || m == 0xd8)
			return 0;
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7))
			continue;
		if (m == 0xd9) {
			*scan = pos;
			return 1;
		}
		if (pos + 2 > n)
			return 1;
		size_t len = an_be16(p + pos);
		if (len < 2)
			return 0;
		if (m == 0xda) {
			*scan = pos + len < n ? pos + len : n;
			return 1;
		}
		pos += len;
	}
}

/* SQLite's header fields that have fixed or few legal values. */
static int sqlite_ok(const uint8_t *p, size_t n)
{
	if (n < 100)
		return 0;
	unsigned ps = an_be16(p + 16);
	if (!(ps == 1 || (ps >= 512 && (ps & (ps - 1)) == 0)))
		return 0;
	if (p[18] < 1 || p[18] > 2 || p[19] < 1 || p[19] > 2 || p[21] != 64 ||
	    p[22] != 32 || p[23] != 32)
		return 0;
	if (an_be32(p + 44) > 4 || an_be32(p + 56) > 3)
		return 0;
	return all_zero(p + 72, 20);
}

/* The first local file header: version, reserved flag bits, a known
 * method, and a file name of printable bytes. */
static int zip_ok(const uint8_t *p, size_t n)
{
	if (!HAS(0, "PK\3\4"))
		return HAS(0, "PK\5\6") ? 1 : -1;
	if (n < 30)
		return 0;
	unsigned ver = an_le16(p + 4), flags = an_le16(p + 6),
	         method = an_le16(p + 8), name = an_le16(p + 26);
	if ((ver & 0xff) > 63 || (flags & 0xd780) ||
	    !(method <= 20 || (method >= 93 && method <= 99)) || name == 0 ||
	    name > 4096)
		return 0;
	for (size_t i = 30; i < 30 + (size_t)name && i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

static int ole_ok(const uint8_t *p, size_t n)
{
	if (n < 34)
		return 0;
	unsigned major = an_le16(p + 26), shift = an_le16(p + 30);
	return (major == 3 || major == 4) && has(p, n, 28, "\xfe\xff", 2) &&
	       (shift == 9 || shift == 12) && an_le16(p + 32) == 6;
}

static int elf_ok(const uint8_t *p, size_t n)
{
	if (n < 24 || p[4] < 1 || p[4] > 2 || p[5] < 1 || p[5] > 2 || p[6] != 1)
		return 0;
	uint32_t v = p[5] == 1 ? get_le32(p + 20) : an_be32(p + 20);
	return v == 1;
}

/* 1 sound, 0 broken, -1 no check for this type. */
static int head_ok(enum bw_ftype t, const uint8_t *p, size_t n)
{
	size_t scan;
	switch (t) {
	case BW_FT_PNG: return png_ok(p, n);
	case BW_FT_JPEG: return jpeg_walk(p, n, &scan);
	case BW_FT_SQLITE: return sqlite_ok(p, n);
	case BW_FT_ZIP: return zip_ok(p, n);
	case BW_FT_OLE: return ole_ok(p, n);
	case BW_FT_ELF: return elf_ok(p, n);
	default: return -1;
	}
}

/* The format's end marker in the last bytes: 1 found, 0 not, -1 n/a. */
static int tail_ok(enum bw_ftype t, const uint8_t *p, size_t n)
{
	switch (t) {
	case BW_FT_JPEG: return memmem(p, n, "\xff\xd9", 2) != NULL;
	case BW_FT_PNG: return memmem(p, n, "IEND\xae\x42\x60\x82", 8) != NULL;
	case BW_FT_PDF: return memmem(p, n, "%%EOF", 5) != NULL;
	case BW_FT_ZIP: return memmem(p, n, "PK\5\6", 4) != NULL;
	default: return -1;
	}
}

/* In JPEG scan data every 0xFF is followed by 0x00 (stuffing), a restart
 * or another marker (>= 0xC0); random bytes break this after 3 of 4 of
 * their 0xFFs, i.e. ~12 times per 4 KiB. */
static uint32_t jpeg_bad_ff(const uint8_t *p, size_t n, uint64_t off,
                            uint64_t start)
{
	uint32_t bad = 0;
	size_t i = start > off ? (size_t)(start - off < n ? start - off : n) : 0;
	for (; i + 1 < n; i++)
		if (p[i] == 0xff && p[i + 1] >= 0x01 && p[i + 1] <= 0xbf)
			bad++;
	return bad;
}

/* Whether a block shows the format's own syntax: PDF object keywords,
 * zip record signatures, tar header magic.  These recur through such
 * files between the compressed parts, and random bytes hold them about
 * once in 4,000 blocks.  A rewrite by a real tool keeps some in the
 * blocks it rewrote; ransomware encrypting whole chunks removes all. */
static int has_syntax(enum bw_ftype t, const uint8_t *p, size_t n)
{
	switch (t) {
	case BW_FT_PDF:
		return memmem(p, n, "obj", 3) != NULL;
	case BW_FT_TAR:
		return memmem(p, n, "ustar", 5) != NULL;
	case BW_FT_ZIP:
		for (const uint8_t *q = p;
		     (q = memmem(q, n - (size_t)(q - p), "PK", 2)) != NULL; q++) {
			size_t left = n - (size_t)(q - p);
			if (left >= 4 && (q[2] & 1) && q[2] <= 7 &&
			    q[3] == q[2] + 1)
				return 1;
			if (left < 4)
				break;
		}
		return 0;
	default:
		return 0;
	}
}

static int syntax_type(enum bw_ftype t)
{
	return t == BW_FT_PDF || t == BW_FT_TAR || t == BW_FT_ZIP;
}

/* ---- base64 / hex ------------------------------------------------------- */

static int b64_sym(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static int hex_sym(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encoded random data uses its alphabet evenly: base64 of random bytes
 * gives 5.99 bits per symbol at 4 KiB, 5.81 at 256 and 5.18 at 64 (sd
 * 0.1), about 6 - 45/n; hex gives 4 - 11/n.  English letters give 3.9 to
 * 4.3 and decimal digits at most 3.32.  The thresholds sit 0.5 (base64)
 * and 0.35 (hex) below the expected value: > 4 sd at 64 symbols, more
 * above, and capped where the gap to text is widest. */
static double b64_min_entropy(uint64_t n)
{
	double t = 6.0 - 45.4 / (double)n - 0.5;
	return t < 5.5 ? t : 5.5;
}

static double hex_min_entropy(uint64_t n)
{
	double t = 4.0 - 10.8 / (double)n - 0.35;
	return t < 3.8 ? t : 3.8;
}

int bw_looks_base64(const uint8_t *p, size_t n)
{
	uint64_t hb[64] = {0}, hh[16] = {0};
	uint64_t nb = 0, nh = 0, nl = 0, sp = 0, eq = 0;
	if (!p || n < 64)
		return 0;
	if (n > EDGE)
		n = EDGE;
	/* Bytes foreign to each alphabet; once both exceed 2% the answer is
	 * no, which for text and binary data is clear within 64 bytes or so:
	 * this runs on every rewritten block, twice. */
	uint64_t junk_b = 0, junk_h = 0, lim = n / 50;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		int s = b64_sym(c), h = hex_sym(c);
		if (s >= 0) {
			hb[s]++;
			nb++;
		}
		if (h >= 0) {
			hh[h]++;
			nh++;
		}
		if (c == '\n' || c == '\r')
			nl++;
		else if (c == ' ' || c == '\t') {
			sp++;
			junk_b++;
		} else if (c == '=') {
			eq++;
			junk_h++;
		} else {
			junk_b += s < 0;
			junk_h += h < 0;
		}
		if ((i & 63) == 63 && junk_b > lim && junk_h > lim)
			return 0;
	}
	/* base64: <= 2% other bytes, line breaks at most every 8 symbols,
	 * '=' only as padding */
	if (nb >= 64 && (n - nb - nl - eq) * 50 <= n && nl * 8 <= n &&
	    eq * 20 <= n &&
	    hist_entropy(hb, 64, nb) >= b64_min_entropy(nb))
		return 1;
	/* hex: spaces allowed between bytes ("de ad be ef") */
	if (nh >= 64 && (n - nh - nl - sp) * 50 <= n && (nl + sp) * 2 <= n &&
	    hist_entropy(hh, 16, nh) >= hex_min_entropy(nh))
		return 1;
	return 0;
}

/* ---- sampling ------------------------------------------------------------- */

/* Bytes of one version: a descriptor, a buffer or a reader. */
struct src {
	int fd;
	const uint8_t *mem;
	bw_sample_read_fn rd;
	void *arg;
	uint64_t size;
	uint64_t *bytes_read;
};

/* Read up to len bytes at off; *got is short only at EOF (also when the
 * file shrank under us: we compare what is there). */
static int src_read(const struct src *s, uint64_t off, uint8_t *buf,
                    size_t len, size_t *got)
{
	*got = 0;
	if (off >= s->size)
		return 0;
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	if (s->rd) {
		int r = s->rd(s->arg, off, buf, len, got);
		if (r)
			return r;
	} else if (s->fd < 0) {
		memcpy(buf, s->mem + off, len);
		*got = len;
	} else {
		while (*got < len) {
			ssize_t r = pread(s->fd, buf + *got, len - *got,
			                  (off_t)(off + *got));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return bw_from_errno(errno);
			}
			if (r == 0)
				break;
			*got += (size_t)r;
		}
	}
	*s->bytes_read += *got;
	return 0;
}

/* Where the samples of a length L lie: [0, head) whole, nmid blocks
 * between, [tail, L) whole; tail is 4 KiB aligned so that blocks line up
 * with database pages and with the chunks ransomware encrypts. */
struct plan {
	uint64_t len, head, tail;
	uint64_t mid_first, mid_span; /* in blocks */
	uint32_t nmid;
};

static void plan_make(struct plan *pl, uint64_t len)
{
	memset(pl, 0, sizeof *pl);
	pl->len = len;
	pl->head = len < EDGE ? len : EDGE;
	pl->tail = len;
	if (len <= EDGE)
		return;
	uint64_t t = (len - EDGE) / UNIT * UNIT;
	pl->tail = t > pl->head ? t : pl->head;
	pl->mid_first = pl->head / UNIT;
	pl->mid_span = (pl->tail - pl->head) / UNIT;
	pl->nmid = pl->mid_span < MID_UNITS ? (uint32_t)pl->mid_span : MID_UNITS;
}

/* Offset of middle block i: the centres of nmid equal slices. */
static uint64_t plan_mid(const struct plan *pl, uint32_t i)
{
	uint64_t k = ((uint64_t)2 * i + 1) * pl->mid_span / (2 * pl->nmid);
	return (pl->mid_first + k) * UNIT;
}

struct acc {
	uint64_t ho[256], hn[256];   /* rewritten blocks, old and new */
	uint64_t he[256];            /* ... their bytes that stayed equal */
	uint64_t rw_bytes, diff, runs, ff_old, ff_new;
	uint32_t compared, changed, shifted, filled, zeroed, rewritten;
	uint32_t eligible, enc_new, enc_old;
	uint32_t syn_old, syn_new;   /* rewritten blocks showing syntax */
};

/* Everything one analysis needs, in one allocation. */
struct ctx {
	struct src old, cur;
	int64_t delta;            /* new size - old size */
	int jpeg;                 /* count JPEG stuffing errors */
	enum bw_ftype syn;        /* count syntax of this type, or EMPTY */
	uint64_t scan_old, scan_new;
	struct acc a;
	/* buffers last: only what precedes them is zeroed */
	uint8_t bo[EDGE + UNIT], bn[EDGE + UNIT], bs[UNIT];
};

static struct ctx *ctx_new(void)
{
	struct ctx *c = malloc(sizeof *c);
	if (c)
		memset(c, 0, offsetof(struct ctx, bo));
	return c;
}

static int block_cmp(struct ctx *c, uint64_t off, const uint8_t *o,
                     const uint8_t *n, size_t len)
{
	struct acc *a = &c->a;
	a->compared++;
	if (!memcmp(o, n, len))
		return 0;
	/* After an insertion or deletion the old bytes sit delta further on:
	 * an edited text must not look rewritten from the edit to EOF. */
	if (c->delta) {
		int64_t o2 = (int64_t)off + c->delta;
		if (o2 >= 0 && (uint64_t)o2 + len <= c->cur.size) {
			size_t got;
			int r = src_read(&c->cur, (uint64_t)o2, c->bs, len, &got);
			if (r)
				return r;
			if (got == len && !memcmp(o, c->bs, len)) {
				a->shifted++;
				return 0;
			}
		}
	}
	a->changed++;
	if (all_zero(o, len)) {
		a->filled++;
		return 0;
	}
	if (all_zero(n, len)) {
		a->zeroed++;
		return 0;
	}
	a->rewritten++;
	a->rw_bytes += len;
	/* The histogram of the differing bytes is the block's minus that of
	 * the equal ones, which are few: one increment less per byte. */
	size_t eq = EQ_SPLIT, same = 0, runs = 0; /* locals: a->... may alias */
	uint64_t *ho = a->ho, *hn = a->hn, *he = a->he;
	for (size_t i = 0; i < len; i++) {
		uint8_t x = o[i], y = n[i];
		ho[x]++;
		hn[y]++;
		if (x == y) {
			he[x]++;
			same++;
			eq++;
		} else {
			runs += eq >= EQ_SPLIT;
			eq = 0;
		}
	}
	a->diff += len - same;
	a->runs += runs;
	if (len >= 64) {
		a->eligible++;
		a->enc_new += (uint32_t)bw_looks_base64(n, len);
		a->enc_old += (uint32_t)bw_looks_base64(o, len);
	}
	if (c->jpeg) {
		a->ff_old += jpeg_bad_ff(o, len, off, c->scan_old);
		a->ff_new += jpeg_bad_ff(n, len, off, c->scan_new);
	}
	if (c->syn != BW_FT_EMPTY) {
		a->syn_old += (uint32_t)has_syntax(c->syn, o, len);
		a->syn_new += (uint32_t)has_syntax(c->syn, n, len);
	}
	return 0;
}

/* Compare [from, to) of both versions, already in bo/bn at offset base. */
static int range_cmp(struct ctx *c, uint64_t base, uint64_t from, uint64_t to)
{
	for (uint64_t off = from; off < to; off += UNIT) {
		size_t len = (size_t)(to - off < UNIT ? to - off : UNIT);
		int r = block_cmp(c, off, c->bo + (off - base),
		                  c->bn + (off - base), len);
		if (r)
			return r;
	}
	return 0;
}

/* Only the new version: histogram and encoding of its samples, for a new
 * file.  The head is already in bn (nhead bytes). */
static int sample_new_only(struct ctx *c, size_t nhead)
{
	struct acc *a = &c->a;
	struct plan pl;
	size_t got;
	int r;
	plan_make(&pl, c->cur.size);
	for (size_t off = 0; off < nhead; off += UNIT) {
		size_t len = nhead - off < UNIT ? nhead - off : UNIT;
		for (size_t k = 0; k < len; k++)
			a->hn[c->bn[off + k]]++;
		a->rw_bytes += len;
		if (len >= 64) {
			a->eligible++;
			a->enc_new += (uint32_t)bw_looks_base64(c->bn + off, len);
		}
	}
	/* middle and tail */
	for (uint32_t i = 0; i <= pl.nmid; i++) {
		uint64_t off = i < pl.nmid ? plan_mid(&pl, i) : pl.tail;
		size_t want = i < pl.nmid ? UNIT : (size_t)(pl.len - pl.tail);
		if (!want || off < nhead)
			continue;
		r = src_read(&c->cur, off, c->bn, want, &got);
		if (r)
			return r;
		for (size_t b = 0; b < got; b += UNIT) {
			size_t len = got - b < UNIT ? got - b : UNIT;
			for (size_t k = 0; k < len; k++)
				a->hn[c->bn[b + k]]++;
			a->rw_bytes += len;
			if (len >= 64) {
				a->eligible++;
				a->enc_new += (uint32_t)bw_looks_base64(c->bn + b,
				                                        len);
			}
		}
	}
	return 0;
}

static int src_init(struct src *s, int fd, const uint8_t *mem, uint64_t len,
                    uint64_t *counter)
{
	s->fd = fd;
	s->mem = mem;
	s->rd = NULL;
	s->size = len;
	s->bytes_read = counter;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st))
			return bw_from_errno(errno);
		s->size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	}
	return 0;
}

/* A zip's central directory lists every member with the offset of its
 * local header: check up to ZIP_PROBES of those headers, spread over the
 * directory, for their signature and name.  Members lie all through the
 * file, so this sees chunks encrypted anywhere, not only in the samples.
 * *res: 1 sound, 0 broken, -1 not checkable (zip64, a prefix, multiple
 * disks).  buf holds EDGE bytes.  Reads <= 1 KiB + 64 KiB + 64 * 542. */
#define ZIP_PROBES 64u
static int zip_directory(const struct src *s, uint8_t *buf, int *res)
{
	uint8_t lh[30 + 512];
	size_t got, tl = s->size < 22 + TRAILER ? (size_t)s->size : 22 + TRAILER;
	int r;
	*res = -1;
	if ((r = src_read(s, s->size - tl, buf, tl, &got)))
		return r;
	size_t e = got;
	while (e >= 22 && memcmp(buf + e - 22, "PK\5\6", 4))
		e--;
	if (e < 22)
		return 0; /* no end record: tail_ok() judged that */
	const uint8_t *eo = buf + e - 22;
	uint64_t eocd = s->size - tl + (e - 22);
	unsigned total = an_le16(eo + 10);
	uint32_t cd_size = get_le32(eo + 12), cd_off = get_le32(eo + 16);
	if (an_le16(eo + 4) || an_le16(eo + 6) || total == 0xffff ||
	    cd_off == 0xffffffffu || cd_size == 0xffffffffu)
		return 0;
	if ((uint64_t)cd_off + cd_size != eocd) {
		*res = 0; /* an offset that lies is damage, or a prefix */
		return 0;
	}
	size_t want = cd_size < EDGE ? cd_size : EDGE, lgot;
	if ((r = src_read(s, cd_off, buf, want, &got)))
		return r;
	unsigned step = total / ZIP_PROBES + 1, idx = 0;
	*res = 0;
	for (size_t pos = 0; idx < total && pos + 46 <= got; idx++) {
		const uint8_t *ce = buf + pos;
		if (memcmp(ce, "PK\1\2", 4))
			return 0;
		unsigned nl = an_le16(ce + 28);
		size_t next = pos + 46 + nl + an_le16(ce + 30) + an_le16(ce + 32);
		uint32_t lo = get_le32(ce + 42);
		if (idx % step == 0 && nl <= 512 && pos + 46 + nl <= got) {
			if ((r = src_read(s, lo, lh, 30 + nl, &lgot)))
				return r;
			if (lgot != 30 + nl || memcmp(lh, "PK\3\4", 4) ||
			    an_le16(lh + 26) != nl ||
			    memcmp(lh + 30, ce + 46, nl))
				return 0;
		}
		pos = next;
	}
	*res = 1;
	return 0;
}

static void verdict(struct ctx *c, struct bw_sample_cmp *out,
                    int new_head_zero, int head_broken)
{
	struct acc *a = &c->a;
	out->blocks_compared = a->compared;
	out->blocks_changed = a->changed;
	out->blocks_shifted = a->shifted;
	out->blocks_filled = a->filled;
	out->blocks_zeroed = a->zeroed;
	out->blocks_rewritten = a->rewritten;
	out->blocks_encoded = a->enc_new;
	out->diff_segments =
		a->runs > UINT32_MAX ? UINT32_MAX : (uint32_t)a->runs;
	out->diff_bytes = a->diff;
	out->old_entropy = hist_entropy(a->ho, 256, a->rw_bytes);
	out->new_entropy = hist_entropy(a->hn, 256, a->rw_bytes);
	uint64_t dho[256], dhn[256];
	for (int i = 0; i < 256; i++) {
		dho[i] = a->ho[i] - a->he[i];
		dhn[i] = a->hn[i] - a->he[i];
	}
	out->diff_old_entropy = hist_entropy(dho, 256, a->diff);
	out->diff_new_entropy = hist_entropy(dhn, 256, a->diff);
	out->changed_byte_frac =
		a->rw_bytes ? (double)a->diff / (double)a->rw_bytes : 0.0;

	double dn = out->diff_new_entropy, dl = out->diff_old_entropy;
	int random_new = a->diff >= MIN_ENT_BYTES && dn >= ent_hi(a->diff);
	int new_container = bw_ftype_is_container(out->new_type);

	out->magic_lost = ftype_known(out->old_type) &&
	                  out->new_type == BW_FT_UNKNOWN &&
	                  out->new_size >= 16 && !new_head_zero;
	out->entropy_up = random_new && (dl <= ENT_LO || dn - dl >= ENT_RISE);
	out->intermittent = random_new && a->diff >= MIN_STRIPE_BYTES &&
	                    out->changed_byte_frac >= 0.1 &&
	                    out->changed_byte_frac <= 0.9 &&
	                    a->runs >= (uint64_t)STRIPE_RUNS * a->rewritten;
	out->b64_camouflage =
		a->eligible > 0 &&
		(uint64_t)a->enc_new * 10 >= (uint64_t)a->eligible * 9 &&
		(uint64_t)a->enc_old * 10 <= a->eligible;
	out->format_broken = head_broken ||
	                     (c->jpeg && a->ff_new >= 8 &&
	                      a->ff_new > 4 * a->ff_old + 8) ||
	                     (random_new && a->syn_old >= 2 && a->syn_new == 0);
	out->container_new = new_container && out->new_type != out->old_type;
	out->wiped = out->old_size > 0 &&
	             (out->new_size == 0 || (a->zeroed > 0 && a->rewritten == 0));
	/* A container may legitimately change its entropy (a tar or zip
	 * re-created with other members); its magic and stripes still count. */
	out->suspicious = !out->container_new &&
	                  (out->magic_lost || out->format_broken ||
	                   out->b64_camouflage || out->intermittent ||
	                   (out->entropy_up && !new_container));
}

static int compare(struct ctx *c, struct bw_sample_cmp *out, int have_old)
{
	size_t ohead = 0, nhead = 0;
	int r;

	out->old_size = have_old ? c->old.size : 0;
	out->new_size = c->cur.size;
	r = src_read(&c->cur, 0, c->bn, EDGE, &nhead);
	if (r)
		return r;
	if (have_old) {
		r = src_read(&c->old, 0, c->bo, EDGE, &ohead);
		if (r)
			return r;
	}
	out->old_type = bw_ftype_detect(c->bo, ohead);
	out->new_type = bw_ftype_detect(c->bn, nhead);
	if (!have_old || c->old.size == 0) {
		r = sample_new_only(c, nhead);
		if (r)
			return r;
		out->new_entropy = hist_entropy(c->a.hn, 256, c->a.rw_bytes);
		return 0;
	}

	int broken = 0;
	if (out->old_type == out->new_type &&
	    head_ok(out->old_type, c->bo, ohead) == 1 &&
	    head_ok(out->new_type, c->bn, nhead) == 0)
		broken = 1;
	if (out->old_type == BW_FT_JPEG && out->new_type == BW_FT_JPEG) {
		size_t so, sn;
		c->jpeg = 1;
		(void)jpeg_walk(c->bo, ohead, &so);
		(void)jpeg_walk(c->bn, nhead, &sn);
		c->scan_old = so;
		c->scan_new = sn;
	}
	c->syn = out->old_type == out->new_type && syntax_type(out->old_type)
	                 ? out->old_type
	                 : BW_FT_EMPTY;
	int new_head_zero =
		nhead > 0 && all_zero(c->bn, nhead < UNIT ? nhead : UNIT);

	uint64_t len = c->old.size < c->cur.size ? c->old.size : c->cur.size;
	struct plan pl;
	c->delta = (int64_t)c->cur.size - (int64_t)c->old.size;
	plan_make(&pl, len);
	uint64_t hend = pl.head;
	if (hend > ohead)
		hend = ohead; /* a version shrank while we read */
	if (hend > nhead)
		hend = nhead;
	r = range_cmp(c, 0, 0, hend);
	if (r)
		return r;

	for (uint32_t i = 0; i < pl.nmid; i++) {
		uint64_t off = plan_mid(&pl, i);
		size_t go, gn;
		if ((r = src_read(&c->old, off, c->bo, UNIT, &go)) ||
		    (r = src_read(&c->cur, off, c->bn, UNIT, &gn)))
			return r;
		size_t n = go < gn ? go : gn;
		if (n && (r = block_cmp(c, off, c->bo, c->bn, n)))
			return r;
	}

	if (pl.tail < pl.len) {
		size_t want = (size_t)(pl.len - pl.tail), go, gn;
		if ((r = src_read(&c->old, pl.tail, c->bo, want, &go)) ||
		    (r = src_read(&c->cur, pl.tail, c->bn, want, &gn)))
			return r;
		size_t n = go < gn ? go : gn;
		if ((r = range_cmp(c, pl.tail, pl.tail, pl.tail + n)))
			return r;
	}

	/* The trailer at each version's own end: ransomware that appends its
	 * key blob or encrypts the tail removes it, editors keep it. */
	if (!broken && out->old_type == out->new_type &&
	    tail_ok(out->old_type, c->bo, 0) >= 0) {
		size_t to = c->old.size < TRAILER ? (size_t)c->old.size : TRAILER;
		size_t tn = c->cur.size < TRAILER ? (size_t)c->cur.size : TRAILER;
		size_t go, gn;
		if ((r = src_read(&c->old, c->old.size - to, c->bo, to, &go)) ||
		    (r = src_read(&c->cur, c->cur.size - tn, c->bn, tn, &gn)))
			return r;
		if (tail_ok(out->old_type, c->bo, go) == 1 &&
		    tail_ok(out->new_type, c->bn, gn) == 0)
			broken = 1;
	}
	if (!broken && out->old_type == BW_FT_ZIP && out->new_type == BW_FT_ZIP) {
		int zo, zn;
		if ((r = zip_directory(&c->old, c->bo, &zo)))
			return r;
		if (zo == 1 && (r = zip_directory(&c->cur, c->bn, &zn)))
			return r;
		if (zo == 1 && zn == 0)
			broken = 1;
	}
	verdict(c, out, new_head_zero, broken);
	return 0;
}

static int run_rd(int old_fd, const uint8_t *old, size_t old_len, int have_old,
                  bw_sample_read_fn rd, void *arg, int new_fd, const uint8_t *cur,
                  size_t cur_len, struct bw_sample_cmp *out)
{
	struct ctx *c = ctx_new();
	int r;
	if (!c)
		return BW_ENOMEM;
	if ((r = src_init(&c->cur, new_fd, cur, cur_len, &out->bytes_read)))
		goto out;
	if (have_old &&
	    (r = src_init(&c->old, old_fd, old, old_len, &out->bytes_read)))
		goto out;
	c->old.rd = rd;
	c->old.arg = arg;
	r = compare(c, out, have_old);
out:
	free(c);
	return r;
}

static int run(int old_fd, const uint8_t *old, size_t old_len, int have_old,
               int new_fd, const uint8_t *cur, size_t cur_len,
               struct bw_sample_cmp *out)
{
	return run_rd(old_fd, old, old_len, have_old, NULL, NULL, new_fd, cur, cur_len, out);
}

int bw_sample_compare(int old_fd, int new_fd, struct bw_sample_cmp *out)
{
	if (!out)
		return BW_EINVAL;
	memset(out, 0, sizeof *out);
	if (new_fd < 0)
		return BW_EINVAL;
	return run(old_fd, NULL, 0, old_fd >= 0, new_fd, NULL, 0, out);
}

int bw_sample_compare_rd(bw_sample_read_fn rd, void *arg, uint64_t old_len, int new_fd,
                         struct bw_sample_cmp *out)
{
	if (!out)
		return BW_EINVAL;
	memset(out, 0, sizeof *out);
	if (new_fd < 0 || !rd)
		return BW_EINVAL;
	return run_rd(-1, NULL, (size_t)old_len, 1, rd, arg, new_fd, NULL, 0, out);
}

int bw_sample_compare_mem(const uint8_t *old, size_t old_len,
                          const uint8_t *new_, size_t new_len,
                          struct bw_sample_cmp *out)
{
	if (!out)
		return BW_EINVAL;
	memset(out, 0, sizeof *out);
	if ((!old && old_len) || (!new_ && new_len))
		return BW_EINVAL;
	return run(-1, old, old_len, old != NULL, -1, new_, new_len, out);
}

/* A new file alone: ciphertext-like if of no known type and within 0.05
 * bit of random over the samples, or text whose first block and >= 90%
 * of the others are base64/hex of random data. */
static int new_verdict(const uint8_t *p, size_t n, int fd)
{
	struct bw_sample_cmp out;
	struct ctx *c = ctx_new();
	int r;
	if (!c)
		return BW_ENOMEM;
	memset(&out, 0, sizeof out);
	if ((r = src_init(&c->cur, fd, p, n, &out.bytes_read)) ||
	    (r = compare(c, &out, 0)))
		goto out;
	struct acc *a = &c->a;
	if (out.new_type == BW_FT_UNKNOWN)
		r = a->rw_bytes >= MIN_ENT_BYTES &&
		    out.new_entropy >= ent_random(a->rw_bytes);
	else if (out.new_type == BW_FT_TEXT) {
		size_t first = c->cur.size < UNIT ? (size_t)c->cur.size : UNIT;
		size_t got;
		r = src_read(&c->cur, 0, c->bn, first, &got);
		if (r)
			goto out;
		r = a->eligible > 0 && bw_looks_base64(c->bn, got) &&
		    (uint64_t)a->enc_new * 10 >= (uint64_t)a->eligible * 9;
	} else
		r = 0;
out:
	free(c);
	return r;
}

int bw_new_file_ciphertext_like(int fd)
{
	if (fd < 0)
		return BW_EINVAL;
	return new_verdict(NULL, 0, fd);
}

int bw_new_mem_ciphertext_like(const uint8_t *p, size_t n)
{
	if (!p && n)
		return BW_EINVAL;
	return new_verdict(p, n, -1);
}

/* Guard content analysis: file types, entropy, base64/hex, and the
 * old-versus-new verdict on generated documents and the ways ransomware
 * destroys them (full, head-only, striped, chunked, base64 camouflage)
 * next to the ways people and tools change them.  Every comparison runs
 * over buffers and over memfds, which must agree.
 * BW_TEST_VERBOSE=1 prints the measured values as a table. */
#include "analyze.h"

#include <bulwark/core.h>

#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "test.h"

static int verbose;

/* ---- generators ------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

static void rfill(struct rng *r, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd(r) >> 56);
}

static void put(struct bw_buf *b, const void *p, size_t n)
{
	if (bw_buf_append(b, p, n))
		abort();
}

static void puts_(struct bw_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_be32(struct bw_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
	                (uint8_t)v};
	put(b, x, 4);
}

static void put_rand(struct bw_buf *b, struct rng *r, size_t n)
{
	if (bw_buf_reserve(b, n))
		abort();
	rfill(r, b->data + b->len, n);
	b->len += n;
}

static const char *const words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as",
	"was", "with", "be", "by", "on", "not", "he", "this", "are", "or",
	"his", "from", "at", "which", "but", "have", "an", "had", "they",
	"you", "were", "their", "one", "all", "we", "can", "her", "has",
	"there", "been", "if", "more", "when", "will", "would", "who", "so",
	"no", "invoice", "customer", "payment", "quarter", "report", "server",
	"backup", "network", "meeting", "project", "schedule", "budget",
	"contract", "delivery", "office", "support", "ticket", "update",
	"account", "review", "policy", "service", "agreement", "monthly",
	"security", "printer", "password", "license", "renewal", "migration",
	"mailbox", "firewall", "laptop", "warranty", "vendor", "approved",
	"pending", "overdue", "attached", "please", "regards", "thanks",
	"request", "second", "floor", "building", "morning", "afternoon",
	"Tuesday", "Friday", "January", "October", "manager", "department",
	"finance", "sales", "legal", "planning", "inventory", "shipment",
	"warehouse", "estimate", "balance", "total", "discount", "order",
};
#define NWORDS (sizeof words / sizeof *words)

/* English-like prose wrapped at 72 columns, exactly n bytes. */
static void gen_text(struct bw_buf *b, struct rng *r, size_t n)
{
	size_t start = b->len, col = 0;
	while (b->len - start < n) {
		size_t k = 6 + rnd(r) % 12;
		for (size_t j = 0; j < k; j++) {
			char w[32];
			const char *s = words[rnd(r) % NWORDS];
			size_t l = strlen(s);
			memcpy(w, s, l);
			if (j == 0 && w[0] >= 'a' && w[0] <= 'z')
				w[0] = (char)(w[0] - 32);
			if (j + 1 == k)
				w[l++] = '.';
			else if (rnd(r) % 9 == 0)
				w[l++] = ',';
			if (col && col + l + 1 > 72) {
				puts_(b, "\n");
				col = 0;
			} else if (col) {
				puts_(b, " ");
				col++;
			}
			put(b, w, l);
			col += l;
		}
		if (rnd(r) % 5 == 0) {
			puts_(b, "\n\n");
			col = 0;
		}
	}
	b->len = start + n;
}

static void gen_csv_rows(struct bw_buf *b, struct rng *r, unsigned first,
                         unsigned rows)
{
	static const char *const st[] = {"paid", "open", "overdue", "void"};
	for (unsigned i = first; i < first + rows; i++) {
		char line[200];
		const char *f = words[rnd(r) % NWORDS], *l = words[rnd(r) % NWORDS];
		int k = snprintf(line, sizeof line,
		                 "%u,2024-%02u-%02u,%s %s,%s.%s@example.com,%u.%02u,%s\n",
		                 i, (unsigned)(1 + rnd(r) % 12),
		                 (unsigned)(1 + rnd(r) % 28), f, l, f, l,
		                 (unsigned)(rnd(r) % 5000), (unsigned)(rnd(r) % 100),
		                 st[rnd(r) % 4]);
		put(b, line, (size_t)k);
	}
}

static uint32_t tcrc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (c & 1 ? 0xedb88320u : 0);
	}
	return ~c;
}

static void png_chunk(struct bw_buf *b, const char *type, const uint8_t *d,
                      size_t n)
{
	put_be32(b, (uint32_t)n);
	size_t at = b->len;
	put(b, type, 4);
	if (n)
		put(b, d, n);
	put_be32(b, tcrc(b->data + at, n + 4));
}

/* A PNG of about n bytes: IHDR, pHYs, tEXt, random IDAT, IEND. */
static void gen_png(struct bw_buf *b, struct rng *r, size_t n)
{
	static const uint8_t ihdr[13] = {0, 0, 2, 0x80, 0, 0, 1, 0xe0, 8, 2, 0, 0, 0};
	static const uint8_t phys[9] = {0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, 1};
	uint8_t idat[8192];
	puts_(b, "\x89PNG\r\n\x1a\n");
	png_chunk(b, "IHDR", ihdr, sizeof ihdr);
	png_chunk(b, "pHYs", phys, sizeof phys);
	png_chunk(b, "tEXt", (const uint8_t *)"Software\0bulwark test", 21);
	while (b->len + sizeof idat + 24 < n) {
		rfill(r, idat, sizeof idat);
		png_chunk(b, "IDAT", idat, sizeof idat);
	}
	png_chunk(b, "IEND", NULL, 0);
}

/* A baseline JPEG of about n bytes: JFIF, DQT, SOF0, DHT, SOS, random
 * scan data with 0xFF stuffed, EOI. */
static void gen_jpeg(struct bw_buf *b, struct rng *r, size_t n)
{
	static const uint8_t head[] = {
		0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1,
		0, 1, 0, 0};
	static const uint8_t sof[] = {0xff, 0xc0, 0, 17, 8, 1, 0xe0, 2, 0x80, 3,
	                              1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1};
	static const uint8_t sos[] = {0xff, 0xda, 0, 12, 3, 1, 0, 2, 0x11, 3,
	                              0x11, 0, 0x3f, 0};
	uint8_t q[69] = {0xff, 0xdb, 0, 67, 0};
	for (int i = 0; i < 64; i++)
		q[5 + i] = (uint8_t)(1 + i / 2);
	uint8_t dht[33] = {0xff, 0xc4, 0, 31, 0, 0, 1, 5, 1, 1, 1, 1, 1, 1};
	for (int i = 0; i < 12; i++)
		dht[21 + i] = (uint8_t)i;
	put(b, head, sizeof head);
	put(b, q, sizeof q);
	put(b, sof, sizeof sof);
	put(b, dht, sizeof dht);
	put(b, sos, sizeof sos);
	while (b->len + 3 < n) {
		uint8_t c = (uint8_t)(rnd(r) >> 56);
		put(b, &c, 1);
		if (c == 0xff)
			put(b, "", 1);
	}
	put(b, "\xff\xd9", 2);
}

/* A PDF of about n bytes: text objects and content streams between
 * FlateDecode-like random streams, an xref table and %%EOF. */
static void gen_pdf(struct bw_buf *b, struct rng *r, size_t n)
{
	char s[256];
	unsigned obj = 1;
	puts_(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
	while (b->len + 20000 < n) {
		int k = snprintf(s, sizeof s,
		                 "%u 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox "
		                 "[0 0 612 792] /Contents %u 0 R /Resources << /Font "
		                 "<< /F1 5 0 R >> >> >>\nendobj\n",
		                 obj, obj + 1);
		put(b, s, (size_t)k);
		obj++;
		struct bw_buf t;
		bw_buf_init(&t, 0);
		for (int line = 0; line < 12; line++) {
			puts_(&t, "BT /F1 11 Tf 72 ");
			k = snprintf(s, sizeof s, "%d", 700 - 14 * line);
			put(&t, s, (size_t)k);
			puts_(&t, " Td (");
			gen_text(&t, r, 60);
			puts_(&t, ") Tj ET\n");
		}
		k = snprintf(s, sizeof s, "%u 0 obj\n<< /Length %zu >>\nstream\n",
		             obj++, t.len);
		put(b, s, (size_t)k);
		put(b, t.data, t.len);
		puts_(b, "\nendstream\nendobj\n");
		bw_buf_release(&t);
		size_t sl = 2048 + rnd(r) % 14000;
		k = snprintf(s, sizeof s,
		             "%u 0 obj\n<< /Length %zu /Filter /FlateDecode >>\nstream\n",
		             obj++, sl);
		put(b, s, (size_t)k);
		put_rand(b, r, sl);
		puts_(b, "\nendstream\nendobj\n");
	}
	puts_(b, "xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 /Root 1 0 R "
	         ">>\nstartxref\n123456\n%%EOF\n");
}

/* One SQLite record cell for a table leaf page, at p (backwards fill
 * done by the caller).  Returns its length. */
static size_t sqlite_cell(uint8_t *p, struct rng *r, unsigned rowid)
{
	char name[40], email[56], note[52];
	const char *f = words[rnd(r) % NWORDS], *l = words[rnd(r) % NWORDS];
	snprintf(name, sizeof name, "%s %s", f, l);
	snprintf(email, sizeof email, "%s.%s@example.com", f, l);
	struct bw_buf t;
	bw_buf_init(&t, 0);
	gen_text(&t, r, 20 + rnd(r) % 30);
	memcpy(note, t.data, t.len);
	size_t nl = t.len, nn = strlen(name), ne = strlen(email);
	bw_buf_release(&t);
	uint8_t *q = p;
	size_t payload = 5 + 2 + nn + ne + nl;
	*q++ = (uint8_t)payload;
	*q++ = (uint8_t)(rowid & 0x7f);
	*q++ = 5;                         /* header size */
	*q++ = 2;                         /* 16-bit int */
	*q++ = (uint8_t)(13 + 2 * nn);
	*q++ = (uint8_t)(13 + 2 * ne);
	*q++ = (uint8_t)(13 + 2 * nl);
	*q++ = (uint8_t)(rowid >> 8);
	*q++ = (uint8_t)rowid;
	memcpy(q, name, nn);
	q += nn;
	memcpy(q, email, ne);
	q += ne;
	memcpy(q, note, nl);
	q += nl;
	return (size_t)(q - p);
}

/* Fill table leaf page pg (4 KiB) with records up to ~70%. */
static void sqlite_leaf(uint8_t *pg, size_t hdr, struct rng *r, unsigned *rowid)
{
	size_t top = 4096, ncell = 0, ptr = hdr + 8;
	pg[hdr] = 0x0d;
	while (top > ptr + 2 * ncell + 200 && top > 4096 * 3 / 10) {
		uint8_t cell[200];
		size_t l = sqlite_cell(cell, r, (*rowid)++);
		top -= l;
		memcpy(pg + top, cell, l);
		pg[ptr + 2 * ncell] = (uint8_t)(top >> 8);
		pg[ptr + 2 * ncell + 1] = (uint8_t)top;
		ncell++;
	}
	pg[hdr + 3] = (uint8_t)(ncell >> 8);
	pg[hdr + 4] = (uint8_t)ncell;
	pg[hdr + 5] = (uint8_t)(top >> 8);
	pg[hdr + 6] = (uint8_t)top;
}

static void gen_sqlite(struct bw_buf *b, struct rng *r, size_t pages)
{
	static const uint8_t hdr[100] = {
		'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ',
		'3', 0, 0x10, 0, 1, 1, 0, 64, 32, 32, 0, 0, 0, 1, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 1, [92] = 0, 0, 0, 1, 0, 0x2e, 0x60, 0x01};
	size_t at = b->len;
	unsigned rowid = 1;
	if (bw_buf_reserve(b, pages * 4096))
		abort();
	memset(b->data + at, 0, pages * 4096);
	b->len += pages * 4096;
	uint8_t *p = b->data + at;
	memcpy(p, hdr, sizeof hdr);
	p[28] = (uint8_t)(pages >> 24);
	p[29] = (uint8_t)(pages >> 16);
	p[30] = (uint8_t)(pages >> 8);
	p[31] = (uint8_t)pages;
	p[100] = 0x0d;
	const char *schema = "CREATE TABLE customers(id INTEGER PRIMARY KEY, "
	                     "name TEXT, email TEXT, note TEXT)";
	memcpy(p + 4096 - strlen(schema), schema, strlen(schema));
	for (size_t i = 1; i < pages; i++)
		sqlite_leaf(p + i * 4096, 0, r, &rowid);
}

/* A zip of about n bytes: local headers, random (deflated) data, a
 * central directory and the end record. */
static void gen_zip(struct bw_buf *b, struct rng *r, size_t n)
{
	struct bw_buf cd;
	unsigned nent = 0;
	bw_buf_init(&cd, 0);
	while (b->len + 30000 < n) {
		char name[40];
		int nl = snprintf(name, sizeof name, "word/media/image%03u.png", nent);
		size_t dl = 4096 + rnd(r) % 20000;
		uint8_t h[30] = {'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0};
		h[26] = (uint8_t)nl;
		h[18] = (uint8_t)dl;
		h[19] = (uint8_t)(dl >> 8);
		h[20] = (uint8_t)(dl >> 16);
		put(b, h, sizeof h);
		put(b, name, (size_t)nl);
		put_rand(b, r, dl);
		uint8_t c[46] = {'P', 'K', 1, 2, 20, 0, 20, 0, 0, 0, 8, 0};
		c[28] = (uint8_t)nl;
		put(&cd, c, sizeof c);
		put(&cd, name, (size_t)nl);
		nent++;
	}
	put(b, cd.data, cd.len);
	uint8_t e[22] = {'P', 'K', 5, 6};
	e[8] = e[10] = (uint8_t)nent;
	put(b, e, sizeof e);
	bw_buf_release(&cd);
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of p[0..n), a line break every wrap characters (0: none). */
static void put_b64(struct bw_buf *b, const uint8_t *p, size_t n, size_t wrap,
                    const char *eol)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t k = n - i < 3 ? n - i : 3;
		if (k > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		char o[4] = {b64chars[v >> 18 & 63], b64chars[v >> 12 & 63],
		             k > 1 ? b64chars[v >> 6 & 63] : '=',
		             k > 2 ? b64chars[v & 63] : '='};
		put(b, o, 4);
		col += 4;
		if (wrap && col >= wrap) {
			puts_(b, eol);
			col = 0;
		}
	}
}

/* ---- the ways files get destroyed -------------------------------------- */

static void enc_range(struct rng *r, uint8_t *p, size_t from, size_t to)
{
	rfill(r, p + from, to - from);
}

/* every other 16 bytes; phase 0 encrypts [0,16), phase 1 keeps it */
static void enc_stripes(struct rng *r, uint8_t *p, size_t n, int phase)
{
	for (size_t i = (size_t)phase * 16; i < n; i += 32)
		enc_range(r, p, i, i + 16 < n ? i + 16 : n);
}

/* one 64 KiB block in four, starting with block `phase` */
static void enc_chunks(struct rng *r, uint8_t *p, size_t n, size_t phase)
{
	for (size_t i = phase * 65536; i < n; i += 4 * 65536)
		enc_range(r, p, i, i + 65536 < n ? i + 65536 : n);
}

/* ---- running cases ----------------------------------------------------- */

static int memfd_with(const uint8_t *p, size_t n)
{
	int fd = memfd_create("bw-analyze", MFD_CLOEXEC);
	if (fd < 0 || (n && bw_write_full(fd, p, n)))
		abort();
	if (lseek(fd, 7, SEEK_SET) != 7)
		abort();
	return fd;
}

static void flags_str(const struct bw_sample_cmp *c, char out[16])
{
	snprintf(out, 16, "%c%c%c%c%c%c%c", c->magic_lost ? 'M' : '.',
	         c->format_broken ? 'F' : '.', c->entropy_up ? 'E' : '.',
	         c->b64_camouflage ? 'B' : '.', c->intermittent ? 'I' : '.',
	         c->container_new ? 'C' : '.', c->wiped ? 'W' : '.');
}

static void row(const char *name, const struct bw_sample_cmp *c)
{
	char f[16], t[40];
	if (!verbose)
		return;
	flags_str(c, f);
	snprintf(t, sizeof t, "%s>%s", bw_ftype_name(c->old_type),
	         bw_ftype_name(c->new_type));
	fprintf(stderr,
	        "| %-22s | %-15s | %2u/%2u/%2u/%2u | %4.2f %4.2f | %4.2f %4.2f | "
	        "%5.3f | %6.1f | %2u | %s | %d |\n",
	        name, t, c->blocks_compared, c->blocks_changed, c->blocks_shifted,
	        c->blocks_rewritten, c->old_entropy, c->new_entropy,
	        c->diff_old_entropy, c->diff_new_entropy, c->changed_byte_frac,
	        c->blocks_rewritten ? (double)c->diff_segments / c->blocks_rewritten
	                            : 0.0,
	        c->blocks_encoded, f, c->suspicious);
}

/* Compare over memory and over memfds (old NULL: no old content), check
 * the two agree and leave the offsets alone, check the verdict. */
static void run_case(const char *name, const uint8_t *old, size_t ol,
                     const uint8_t *new_, size_t nl, int want,
                     struct bw_sample_cmp *c)
{
	struct bw_sample_cmp f;
	int r = bw_sample_compare_mem(old, ol, new_, nl, c);
	CHECK_EQ_INT(r, 0);
	int fo = old ? memfd_with(old, ol) : -1, fn = memfd_with(new_, nl);
	r = bw_sample_compare(fo, fn, &f);
	CHECK_EQ_INT(r, 0);
	CHECK(f.old_type == c->old_type && f.new_type == c->new_type);
	CHECK(f.old_size == c->old_size && f.new_size == c->new_size);
	CHECK(f.bytes_read == c->bytes_read);
	CHECK(f.blocks_changed == c->blocks_changed &&
	      f.blocks_shifted == c->blocks_shifted &&
	      f.diff_bytes == c->diff_bytes);
	CHECK(f.new_entropy == c->new_entropy &&
	      f.diff_new_entropy == c->diff_new_entropy);
	CHECK(f.suspicious == c->suspicious && f.wiped == c->wiped &&
	      f.container_new == c->container_new);
	CHECK(lseek(fn, 0, SEEK_CUR) == 7);
	if (fo >= 0) {
		CHECK(lseek(fo, 0, SEEK_CUR) == 7);
		close(fo);
	}
	close(fn);
	CHECK(c->blocks_changed <= c->blocks_compared);
	CHECK(c->blocks_compared <= 16 + 17 + 48);
	CHECK(c->bytes_read <= 2 * 750 * 1024); /* the documented bound */
	if (c->suspicious != want)
		fprintf(stderr, "case %s: suspicious %d, expected %d\n", name,
		        c->suspicious, want);
	CHECK_EQ_INT(c->suspicious, want);
	row(name, c);
}

static uint8_t *dup_(const struct bw_buf *b)
{
	uint8_t *p = malloc(b->len ? b->len : 1);
	if (!p)
		abort();
	memcpy(p, b->data, b->len);
	return p;
}

/* ---- the parts ------------------------------------------------------------ */

static void test_entropy(void)
{
	uint8_t all[256 * 4], two[1000];
	for (size_t i = 0; i < sizeof all; i++)
		all[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof two; i++)
		two[i] = i & 1 ? 'a' : 'b';
	CHECK(bw_entropy(NULL, 0) == 0.0);
	CHECK(bw_entropy(two, 1) == 0.0);
	CHECK(bw_entropy(all, sizeof all) > 7.9999999 &&
	      bw_entropy(all, sizeof all) <= 8.0);
	CHECK(bw_entropy(two, sizeof two) > 0.9999999 &&
	      bw_entropy(two, sizeof two) < 1.0000001);
	/* a 1:3 mixture: 0.811278 bits */
	for (size_t i = 0; i < 1000; i++)
		two[i] = i % 4 ? 'x' : 'y';
	double h = bw_entropy(two, 1000);
	CHECK(h > 0.81127 && h < 0.81129);

	struct rng r = {0x9e3779b97f4a7c15ULL};
	struct bw_buf t;
	uint8_t rb[4096];
	rfill(&r, rb, sizeof rb);
	CHECK(bw_entropy(rb, sizeof rb) > 7.93);
	bw_buf_init(&t, 0);
	gen_text(&t, &r, 65536);
	h = bw_entropy(t.data, t.len);
	CHECK(h > 3.8 && h < 5.0);
	if (verbose)
		fprintf(stderr, "entropy: random 4 KiB %.3f, text 64 KiB %.3f\n",
		        bw_entropy(rb, sizeof rb), h);
	bw_buf_release(&t);
}

static void test_base64(void)
{
	struct rng r = {42};
	uint8_t rb[6000];
	struct bw_buf b;
	bw_buf_init(&b, 0);
	rfill(&r, rb, sizeof rb);

	put_b64(&b, rb, sizeof rb, 0, "");
	CHECK(bw_looks_base64(b.data, b.len) == 1);
	bw_buf_reset(&b);
	put_b64(&b, rb, sizeof rb, 76, "\n");
	CHECK(bw_looks_base64(b.data, b.len) == 1);
	bw_buf_reset(&b);
	put_b64(&b, rb, sizeof rb, 64, "\r\n");
	CHECK(bw_looks_base64(b.data, b.len) == 1);
	bw_buf_reset(&b);
	put_b64(&b, rb, 48, 0, ""); /* 64 symbols, the smallest accepted */
	CHECK(bw_looks_base64(b.data, b.len) == 1);
	CHECK(bw_looks_base64(b.data, 63) == 0);
	/* URL-safe alphabet */
	bw_buf_reset(&b);
	put_b64(&b, rb, 3000, 0, "");
	for (size_t i = 0; i < b.len; i++)
		b.data[i] = b.data[i] == '+' ? '-' : b.data[i] == '/' ? '_' : b.data[i];
	CHECK(bw_looks_base64(b.data, b.len) == 1);

	/* hex, lower and upper case, plain, in lines, spaced */
	char hx[8192 + 64];
	bw_hex_encode(rb, 4096, hx);
	CHECK(bw_looks_base64((uint8_t *)hx, 8192) == 1);
	for (size_t i = 0; i < 8192; i++)
		if (hx[i] >= 'a')
			hx[i] = (char)(hx[i] - 32);
	CHECK(bw_looks_base64((uint8_t *)hx, 8192) == 1);
	bw_buf_reset(&b);
	for (size_t i = 0; i < 2000; i++) {
		char s[4];
		snprintf(s, sizeof s, "%02x%c", rb[i], i % 16 == 15 ? '\n' : ' ');
		put(&b, s, 3);
	}
	CHECK(bw_looks_base64(b.data, b.len) == 1);

	/* not encoded: prose, CSV, C, JSON, a word list, digits, DNA */
	bw_buf_reset(&b);
	gen_text(&b, &r, 8192);
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	for (size_t i = 0; i < b.len; i++) /* even without spaces and dots */
		if (!((b.data[i] >= 'a' && b.data[i] <= 'z') ||
		      (b.data[i] >= 'A' && b.data[i] <= 'Z')))
			b.data[i] = 'e';
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	bw_buf_reset(&b);
	puts_(&b, "id,date,customer,email,amount,status\n");
	gen_csv_rows(&b, &r, 1, 100);
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	bw_buf_reset(&b);
	for (int i = 0; i < 40; i++) {
		char s[200];
		int k = snprintf(s, sizeof s,
		                 "static int parse_%d(const uint8_t *p, size_t n)\n{\n"
		                 "\tif (n < %d)\n\t\treturn BW_EFORMAT;\n"
		                 "\treturn p[%d] == 0x%02x;\n}\n\n",
		                 i, i * 3, i, i * 7);
		put(&b, s, (size_t)k);
	}
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	bw_buf_reset(&b);
	puts_(&b, "[");
	for (int i = 0; i < 60; i++) {
		char s[200];
		int k = snprintf(s, sizeof s,
		                 "{\"id\":%d,\"name\":\"%s\",\"tags\":[\"%s\",\"%s\"],"
		                 "\"active\":%s},",
		                 i, words[i % NWORDS], words[(i * 7) % NWORDS],
		                 words[(i * 13) % NWORDS], i & 1 ? "true" : "false");
		put(&b, s, (size_t)k);
	}
	puts_(&b, "{}]");
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	bw_buf_reset(&b);
	for (int i = 0; i < 400; i++) {
		puts_(&b, words[rnd(&r) % NWORDS]);
		puts_(&b, "\n");
	}
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	bw_buf_reset(&b);
	for (int i = 0; i < 4000; i++) {
		char c = (char)('0' + rnd(&r) % 10);
		put(&b, &c, 1);
	}
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	bw_buf_reset(&b);
	for (int i = 0; i < 4000; i++)
		put(&b, &"ACGT"[rnd(&r) % 4], 1);
	CHECK(bw_looks_base64(b.data, b.len) == 0);
	/* random bytes themselves are not base64 */
	CHECK(bw_looks_base64(rb, sizeof rb) == 0);
	CHECK(bw_looks_base64(NULL, 0) == 0);
	bw_buf_release(&b);
}

struct magic {
	const char *bytes;
	size_t len;
	enum bw_ftype type;
};
#define M(s, t) {s, sizeof(s) - 1, t}

static void test_detect(void)
{
	static const struct magic ms[] = {
		M("%PDF-1.4\n", BW_FT_PDF),
		M("PK\3\4\x14\0\0\0\x08\0", BW_FT_ZIP),
		M("PK\5\6\0\0\0\0", BW_FT_ZIP),
		M("\xff\xd8\xff\xe0\0\x10JFIF", BW_FT_JPEG),
		M("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", BW_FT_PNG),
		M("GIF89a\x10\0\x10\0", BW_FT_GIF),
		M("SQLite format 3\0\x10\0", BW_FT_SQLITE),
		M("\x7f" "ELF\2\1\1\0", BW_FT_ELF),
		M("\x1f\x8b\x08\0\0\0\0\0\0\3", BW_FT_GZIP),
		M("\x28\xb5\x2f\xfd\x24\x10", BW_FT_ZSTD),
		M("\x50\x2a\x4d\x18\4\0\0\0", BW_FT_ZSTD),
		M("\xfd" "7zXZ\0\0\4", BW_FT_XZ),
		M("BZh91AY&SY\0", BW_FT_BZIP2),
		M("7z\xbc\xaf\x27\x1c\0\4", BW_FT_7Z),
		M("Rar!\x1a\x07\x01\0", BW_FT_RAR),
		M("Rar!\x1a\x07\0", BW_FT_RAR),
		M("\x8c\x0d\x04\x09\x03\x08\1\2\3\4\5\6\7\x08\x60", BW_FT_GPG),
		M("\x85\x01\x0c\x03\1\2\3\4\5\6\7\x08\x01\x07\xff", BW_FT_GPG),
		M("\xc6\x33\x04\x65\x00\x00\x00\x16\x09\x2b\x06\x01", BW_FT_GPG),
		M("\xa3\x01\x02\x55\x8f\x41\x0e\xc3\x20\x10\x05\x13", BW_FT_GPG),
		M("-----BEGIN PGP MESSAGE-----\n\nhQEMA", BW_FT_GPG),
		M("age-encryption.org/v1\n-> X25519 abc\n", BW_FT_AGE),
		M("-----BEGIN AGE ENCRYPTED FILE-----\n", BW_FT_AGE),
		M("BORG_SEG\0\0\0\0", BW_FT_BORG),
		M("\0\0\0\x20" "ftypisom\0\0\2\0", BW_FT_MP4),
		M("\0\0\0\x08wide\0\x10\0\0mdat", BW_FT_MP4),
		M("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0", BW_FT_OLE),
		M("\x04\x22\x4d\x18\x64\x40\xa7", BW_FT_LZ4),
		M("\x78\x9c\x4b\xca\xc9\x4f", BW_FT_ZLIB),
		M("\x78\xda\x4b\x4c\x4a\x06\0", BW_FT_ZLIB),
		/* zlib -6 and -9 of 20 KB of words: dynamic first blocks */
		M("\x78\x9c\x8d\x5b\x89\x4e\xe4\x46\x10\xfd\x15\x7e\x8d\x10",
		  BW_FT_ZLIB),
		M("\x78\xda\x8d\x5b\x0b\x6e\x1d\x37\x10\xbb\x8a\xaf\xe6\xa6",
		  BW_FT_ZLIB),
		/* gpg compressed packet, deflate, dynamic block */
		M("\xa3\x01\x8d\x5b\x89\x4e\xe4\x46\x10\xfd\x15\x7e\x8d\x10",
		  BW_FT_GPG),
		M("PACK\0\0\0\2\0\0\0\3", BW_FT_GIT_PACK),
		M("-----BEGIN CERTIFICATE-----\nMIIB", BW_FT_PEM),
		M("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl", BW_FT_PEM),
		M("\x03\xd9\xa2\x9a\x67\xfb\x4b\xb5\1\0\4\0", BW_FT_KDBX),
		M("II*\0\x08\0\0\0", BW_FT_TIFF),
		M("MM\0*\0\0\0\x08", BW_FT_TIFF),
		M("RIFF\x24\x08\0\0WAVEfmt ", BW_FT_RIFF),
		M("OggS\0\2\0\0", BW_FT_OGG),
		M("fLaC\0\0\0\x22", BW_FT_FLAC),
		M("\x1a\x45\xdf\xa3\x9f\x42\x86", BW_FT_MKV),
		M("ID3\4\0\0\0\0\x23\x76", BW_FT_MP3),
		M("BM\x36\x10\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", BW_FT_BMP),
		M("!BDN\x12\x34\x56\x78SM\x17\0\x13\0\x01\x01", BW_FT_PST),
		M("AC1032\0\0\0\0\0\0\x03\0\x1f", BW_FT_DWG),
		M("AC1015\0\0\0\0\0\x0f\x01\0\0", BW_FT_DWG),
		M("\0\1\0\0Standard ACE DB\0\2\0\0", BW_FT_ACCESS),
		M("\0\1\0\0Standard Jet DB\0\1\0\0", BW_FT_ACCESS),
		M("AC1032 is a drawing\n", BW_FT_TEXT),
		M("plain words, nothing else\n", BW_FT_TEXT),
		M("caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 5 \xf0\x9f\x98\x80\n", BW_FT_TEXT),
		M("\xff\xfeh\0e\0l\0l\0o\0\n\0", BW_FT_TEXT),
		M("\xfe\xff\0h\0i\x4e\x2d", BW_FT_TEXT),
		M("\0\0\0\0\0\0\0\0", BW_FT_UNKNOWN),
		M("text with a NUL\0here", BW_FT_UNKNOWN),
	};
	uint8_t buf[1024];
	for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
		enum bw_ftype t = bw_ftype_detect((const uint8_t *)ms[i].bytes,
		                                  ms[i].len);
		if (t != ms[i].type)
			fprintf(stderr, "magic %zu: %s, expected %s\n", i,
			        bw_ftype_name(t), bw_ftype_name(ms[i].type));
		CHECK(t == ms[i].type);
	}
	CHECK(bw_ftype_detect(NULL, 0) == BW_FT_EMPTY);
	CHECK(bw_ftype_detect((const uint8_t *)"\x89PNG\r\n", 6) != BW_FT_PNG);
	CHECK(bw_ftype_detect(buf, 0) == BW_FT_EMPTY);

	/* Latin-1 prose is text; an MZ with a PE header; a ustar header with
	 * its checksum; a PostgreSQL page header */
	const char *l1 = "Pr\xe9sentation du caf\xe9 \xe0 la r\xe9union de "
	                 "l'\xe9quipe financi\xe8re, mardi matin au bureau.\n";
	CHECK(bw_ftype_detect((const uint8_t *)l1, strlen(l1)) == BW_FT_TEXT);
	memset(buf, 0, sizeof buf);
	memcpy(buf, "MZ\x90\0", 4);
	buf[0x3c] = 0x80;
	memcpy(buf + 0x80, "PE\0\0", 4);
	CHECK(bw_ftype_detect(buf, 512) == BW_FT_PE);
	buf[0x81] = 'X';
	CHECK(bw_ftype_detect(buf, 512) == BW_FT_UNKNOWN);
	memset(buf, 0, sizeof buf);
	memcpy(buf, "notes.txt", 9);
	memcpy(buf + 100, "0000644\0", 8);
	memcpy(buf + 124, "00000000012\0", 12);
	buf[156] = '0';
	memcpy(buf + 257, "ustar\00000", 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += i >= 148 && i < 156 ? ' ' : buf[i];
	snprintf((char *)buf + 148, 8, "%06o", sum);
	CHECK(bw_ftype_detect(buf, 1024) == BW_FT_TAR);
	buf[0] = 'N';
	CHECK(bw_ftype_detect(buf, 1024) != BW_FT_TAR);
	memset(buf, 0, sizeof buf);
	buf[12] = 28;                      /* pd_lower */
	buf[14] = 0x80; buf[15] = 0x1f;    /* pd_upper 8064 */
	buf[17] = 0x20;                    /* pd_special 8192 */
	buf[18] = 0x04; buf[19] = 0x20;    /* 8 KiB, layout 4 */
	CHECK(bw_ftype_detect(buf, 1024) == BW_FT_PG);
	buf[16] = 1;                       /* special past the page */
	CHECK(bw_ftype_detect(buf, 1024) == BW_FT_UNKNOWN);

	/* Random bytes are almost never taken for a type: not once in 4,000
	 * 1 KiB blocks (zlib, the weakest magic, matches ~1 in 10^6 there).
	 * Of 300-byte blocks none may be text; a zlib stream that small may
	 * start with a fixed-Huffman block, which is not checkable, so one
	 * in 65,000 random ones is taken for zlib. */
	struct rng r = {7};
	unsigned known = 0, text = 0, small = 0;
	for (int i = 0; i < 8000; i++) {
		size_t len = i & 1 ? sizeof buf : 300;
		rfill(&r, buf, len);
		enum bw_ftype t = bw_ftype_detect(buf, len);
		if (t == BW_FT_TEXT)
			text++;
		else if (t != BW_FT_UNKNOWN && len == 300)
			small++;
		else if (t != BW_FT_UNKNOWN) {
			known++;
			fprintf(stderr, "random block %d taken for %s\n", i,
			        bw_ftype_name(t));
		}
	}
	CHECK_EQ_INT(known, 0);
	CHECK_EQ_INT(text, 0);
	CHECK(small <= 2);

	/* names: all distinct, none missing */
	for (int i = 0; i < BW_FT_NTYPES; i++) {
		CHECK(strcmp(bw_ftype_name((enum bw_ftype)i), "?") != 0);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(bw_ftype_name((enum bw_ftype)i),
			             bw_ftype_name((enum bw_ftype)j)) != 0);
	}
	CHECK(strcmp(bw_ftype_name(BW_FT_NTYPES), "?") == 0);
	CHECK(strcmp(bw_ftype_name((enum bw_ftype)-1), "?") == 0);
	static const enum bw_ftype cont[] = {
		BW_FT_GZIP, BW_FT_ZSTD, BW_FT_XZ, BW_FT_BZIP2, BW_FT_7Z, BW_FT_RAR,
		BW_FT_GPG, BW_FT_AGE, BW_FT_ZIP, BW_FT_TAR};
	for (size_t i = 0; i < sizeof cont / sizeof *cont; i++)
		CHECK(bw_ftype_is_container(cont[i]) == 1);
	CHECK(bw_ftype_is_container(BW_FT_TEXT) == 0);
	CHECK(bw_ftype_is_container(BW_FT_JPEG) == 0);
	CHECK(bw_ftype_is_container(BW_FT_UNKNOWN) == 0);
	CHECK(bw_ftype_is_container(BW_FT_SQLITE) == 0);
}

enum fmt { F_PDF, F_PNG, F_JPEG, F_SQLITE, F_ZIP, F_TEXT, F_N };
static const char *const fmt_names[F_N] = {"pdf", "png", "jpeg", "sqlite",
                                           "zip", "text"};
static const enum bw_ftype fmt_types[F_N] = {BW_FT_PDF, BW_FT_PNG, BW_FT_JPEG,
                                             BW_FT_SQLITE, BW_FT_ZIP,
                                             BW_FT_TEXT};

static void gen_fmt(struct bw_buf *b, enum fmt f, struct rng *r)
{
	switch (f) {
	case F_PDF: gen_pdf(b, r, 1 << 20); break;
	case F_PNG: gen_png(b, r, 900000); break;
	case F_JPEG: gen_jpeg(b, r, 700000); break;
	case F_SQLITE: gen_sqlite(b, r, 256); break;
	case F_ZIP: gen_zip(b, r, 800000); break;
	default: gen_text(b, r, 300000); break;
	}
}

/* Every format, every way of destroying it: suspicious. */
static void test_destroyed(void)
{
	struct rng r = {1234};
	struct bw_sample_cmp c;
	char name[64];
	for (int f = 0; f < F_N; f++) {
		struct bw_buf b;
		bw_buf_init(&b, 0);
		gen_fmt(&b, (enum fmt)f, &r);
		CHECK(bw_ftype_detect(b.data, b.len) == fmt_types[f]);
		uint8_t *n = dup_(&b);
		int known = f != F_TEXT;

		enc_range(&r, n, 0, b.len);
		snprintf(name, sizeof name, "%s full", fmt_names[f]);
		run_case(name, b.data, b.len, n, b.len, 1, &c);
		CHECK(c.magic_lost == known);
		CHECK(c.entropy_up == (f == F_TEXT || f == F_SQLITE));

		memcpy(n, b.data, b.len);
		enc_range(&r, n, 0, 4096);
		snprintf(name, sizeof name, "%s head 4K", fmt_names[f]);
		run_case(name, b.data, b.len, n, b.len, 1, &c);
		CHECK(c.magic_lost == known);
		CHECK_EQ_INT(c.blocks_rewritten, 1);

		memcpy(n, b.data, b.len);
		enc_stripes(&r, n, b.len, 0);
		snprintf(name, sizeof name, "%s stripes@0", fmt_names[f]);
		run_case(name, b.data, b.len, n, b.len, 1, &c);
		CHECK(c.magic_lost == known);
		CHECK(c.intermittent == 1);

		memcpy(n, b.data, b.len);
		enc_stripes(&r, n, b.len, 1);
		snprintf(name, sizeof name, "%s stripes@16", fmt_names[f]);
		run_case(name, b.data, b.len, n, b.len, 1, &c);
		if (f != F_TEXT)
			CHECK(c.new_type == fmt_types[f]); /* magic survived */
		CHECK(c.intermittent == 1);
		if (f == F_PNG || f == F_JPEG || f == F_SQLITE || f == F_ZIP)
			CHECK(c.format_broken == 1);

		/* one 64 KiB chunk in four, sparing the head and the tail
		 * blocks: the format's structure shows it (a PNG, being one
		 * compressed stream without markers, does not: not checked) */
		if (f != F_PNG) {
			memcpy(n, b.data, b.len);
			enc_chunks(&r, n, b.len, 2);
			snprintf(name, sizeof name, "%s chunks 1/4@2", fmt_names[f]);
			run_case(name, b.data, b.len, n, b.len, 1, &c);
			CHECK(c.magic_lost == 0);
			if (f == F_TEXT || f == F_SQLITE)
				CHECK(c.entropy_up == 1);
			else /* jpeg: stuffing; pdf, zip: syntax, directory */
				CHECK(c.format_broken == 1 && c.entropy_up == 0);
		}

		/* ransomware that appends its key blob */
		uint8_t *n2 = malloc(b.len + 512);
		CHECK(n2 != NULL);
		rfill(&r, n2, b.len + 512);
		snprintf(name, sizeof name, "%s full+footer", fmt_names[f]);
		run_case(name, b.data, b.len, n2, b.len + 512, 1, &c);
		free(n2);
		free(n);
		bw_buf_release(&b);
	}

	/* text: one 64 KiB block in four, with and without the first */
	struct bw_buf b;
	bw_buf_init(&b, 0);
	gen_text(&b, &r, 1 << 20);
	uint8_t *n = dup_(&b);
	enc_chunks(&r, n, b.len, 0);
	run_case("text 1MiB chunks 1/4@0", b.data, b.len, n, b.len, 1, &c);
	CHECK(c.entropy_up == 1);
	memcpy(n, b.data, b.len);
	enc_chunks(&r, n, b.len, 2);
	run_case("text 1MiB chunks 1/4@2", b.data, b.len, n, b.len, 1, &c);
	CHECK(c.entropy_up == 1 && c.blocks_rewritten < c.blocks_compared);
	free(n);
	bw_buf_release(&b);

	/* text: the first 4% of 4 MiB */
	bw_buf_init(&b, 0);
	gen_text(&b, &r, 4 << 20);
	n = dup_(&b);
	enc_range(&r, n, 0, b.len / 25);
	run_case("text 4MiB first 4%", b.data, b.len, n, b.len, 1, &c);
	CHECK(c.entropy_up == 1);
	free(n);
	bw_buf_release(&b);

	/* small text files */
	bw_buf_init(&b, 0);
	gen_text(&b, &r, 2000);
	n = dup_(&b);
	enc_range(&r, n, 0, b.len);
	run_case("text 2000B full", b.data, b.len, n, b.len, 1, &c);
	free(n);
	bw_buf_release(&b);

	/* JPEG: first 16 bytes kept, the rest base64 of random data */
	bw_buf_init(&b, 0);
	gen_jpeg(&b, &r, 700000);
	struct bw_buf e;
	bw_buf_init(&e, 0);
	put(&e, b.data, 16);
	uint8_t *rb = malloc(b.len);
	CHECK(rb != NULL);
	rfill(&r, rb, b.len);
	put_b64(&e, rb, b.len * 3 / 4, 76, "\n");
	run_case("jpeg b64 camouflage", b.data, b.len, e.data, b.len, 1, &c);
	CHECK(c.b64_camouflage == 1 && c.new_type == BW_FT_JPEG);
	/* JPEG: the tail encrypted in place (the end marker is gone) */
	n = dup_(&b);
	enc_range(&r, n, b.len - 100000, b.len);
	run_case("jpeg tail 100K", b.data, b.len, n, b.len, 1, &c);
	CHECK(c.format_broken == 1);
	free(n);
	bw_buf_release(&b);

	/* text: base64 of its ciphertext */
	bw_buf_init(&b, 0);
	gen_text(&b, &r, 200000);
	bw_buf_reset(&e);
	put_b64(&e, rb, b.len * 3 / 4, 64, "\r\n");
	run_case("text b64 camouflage", b.data, b.len, e.data, b.len, 1, &c);
	CHECK(c.b64_camouflage == 1 && c.new_type == BW_FT_TEXT);
	/* ... and hex of it */
	char *hx = malloc(b.len + 1);
	CHECK(hx != NULL);
	bw_hex_encode(rb, b.len / 2, hx);
	run_case("text hex camouflage", b.data, b.len, (uint8_t *)hx, b.len, 1, &c);
	CHECK(c.b64_camouflage == 1);
	free(hx);
	free(rb);
	bw_buf_release(&e);

	/* wipes are flagged, but are not "encryption" */
	run_case("text truncated to 0", b.data, b.len, (const uint8_t *)"", 0, 0, &c);
	CHECK(c.wiped == 1 && c.new_type == BW_FT_EMPTY);
	n = calloc(1, b.len);
	CHECK(n != NULL);
	run_case("text punched to zeros", b.data, b.len, n, b.len, 0, &c);
	CHECK(c.wiped == 1 && c.blocks_zeroed == c.blocks_compared);
	free(n);
	bw_buf_release(&b);
	bw_buf_init(&b, 0);
	gen_png(&b, &r, 300000);
	n = calloc(1, b.len);
	CHECK(n != NULL);
	run_case("png punched to zeros", b.data, b.len, n, b.len, 0, &c);
	CHECK(c.wiped == 1 && c.magic_lost == 0);
	free(n);
	bw_buf_release(&b);
}

/* What people and tools do to files: not suspicious. */
static void test_benign(void)
{
	struct rng r = {99};
	struct bw_sample_cmp c;
	struct bw_buf b, n;
	bw_buf_init(&b, 0);
	bw_buf_init(&n, 0);

	/* text: a paragraph appended, inserted, deleted, rewritten in place */
	gen_text(&b, &r, 300000);
	put(&n, b.data, b.len);
	puts_(&n, "\n\n");
	gen_text(&n, &r, 1500);
	run_case("text append", b.data, b.len, n.data, n.len, 0, &c);
	CHECK_EQ_INT(c.blocks_changed, 0);
	bw_buf_reset(&n);
	put(&n, b.data, 150000);
	gen_text(&n, &r, 1234);
	put(&n, b.data + 150000, b.len - 150000);
	run_case("text insert para", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.blocks_shifted > 0 && c.blocks_changed <= 1);
	bw_buf_reset(&n);
	put(&n, b.data, 1000);
	put(&n, b.data + 3000, b.len - 3000);
	run_case("text delete para", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.blocks_shifted > 0);
	bw_buf_reset(&n);
	put(&n, b.data, b.len);
	for (size_t i = 0; i < 20; i++) {
		struct bw_buf p;
		bw_buf_init(&p, 0);
		gen_text(&p, &r, 300);
		memcpy(n.data + 1000 + i * 14000, p.data, 300);
		bw_buf_release(&p);
	}
	run_case("text edit in place", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.entropy_up == 0);
	run_case("text rewritten same", b.data, b.len, b.data, b.len, 0, &c);
	CHECK_EQ_INT(c.blocks_changed, 0);
	run_case("text new file", NULL, 0, b.data, b.len, 0, &c);
	CHECK(c.blocks_compared == 0 && c.new_entropy > 3.5 && c.new_entropy < 5.0);
	run_case("log rotated", b.data, b.len, (const uint8_t *)"", 0, 0, &c);
	CHECK(c.wiped == 1);

	/* a whole different text in its place (an editor "save as" over it) */
	bw_buf_reset(&n);
	gen_text(&n, &r, 280000);
	run_case("text replaced by text", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.blocks_rewritten > 0);

	/* a small HTML file gets a big inline image at the top */
	bw_buf_reset(&b);
	puts_(&b, "<html><body>\n");
	gen_text(&b, &r, 20000);
	puts_(&b, "</body></html>\n");
	bw_buf_reset(&n);
	puts_(&n, "<img src=\"data:image/png;base64,");
	uint8_t *rb = malloc(150000);
	CHECK(rb != NULL);
	rfill(&r, rb, 150000);
	put_b64(&n, rb, 150000, 0, "");
	puts_(&n, "\">\n");
	put(&n, b.data, b.len);
	run_case("html inline b64 image", b.data, b.len, n.data, n.len, 0, &c);

	/* CSV: rows appended; rows inserted at the top */
	bw_buf_reset(&b);
	puts_(&b, "id,date,customer,email,amount,status\n");
	gen_csv_rows(&b, &r, 1, 5000);
	bw_buf_reset(&n);
	put(&n, b.data, b.len);
	gen_csv_rows(&n, &r, 5001, 40);
	run_case("csv append", b.data, b.len, n.data, n.len, 0, &c);
	CHECK_EQ_INT(c.blocks_changed, 0);
	bw_buf_reset(&n);
	puts_(&n, "id,date,customer,email,amount,status\n");
	gen_csv_rows(&n, &r, 9000, 30);
	put(&n, b.data + 37, b.len - 37);
	run_case("csv insert at top", b.data, b.len, n.data, n.len, 0, &c);

	/* SQLite: a few records updated, one inserted into free space */
	bw_buf_reset(&b);
	gen_sqlite(&b, &r, 256);
	bw_buf_reset(&n);
	put(&n, b.data, b.len);
	n.data[27] = 2; /* change counter */
	n.data[95] = 2;
	static const size_t pages[] = {3, 17, 40, 100, 101, 180, 255};
	for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
		uint8_t *pg = n.data + pages[i] * 4096;
		uint8_t cell[200];
		unsigned id = 60000;
		size_t l = sqlite_cell(cell, &r, id);
		memcpy(pg + 4096 - 300, cell, l); /* overwrite some records */
		l = sqlite_cell(cell, &r, id + 1);
		memcpy(pg + 1500, cell, l); /* a new record in free space */
		pg[4] = (uint8_t)(pg[4] + 1);
	}
	run_case("sqlite normal writes", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.format_broken == 0 && c.new_type == BW_FT_SQLITE);

	/* JPEG replaced by another JPEG; PNG by another PNG; zip re-zipped */
	bw_buf_reset(&b);
	gen_jpeg(&b, &r, 700000);
	bw_buf_reset(&n);
	gen_jpeg(&n, &r, 690000);
	run_case("jpeg re-encoded", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.blocks_rewritten > 40 && c.diff_new_entropy > 7.9);
	bw_buf_reset(&b);
	gen_png(&b, &r, 500000);
	bw_buf_reset(&n);
	gen_png(&n, &r, 520000);
	run_case("png re-encoded", b.data, b.len, n.data, n.len, 0, &c);
	bw_buf_reset(&b);
	gen_zip(&b, &r, 600000);
	bw_buf_reset(&n);
	gen_zip(&n, &r, 610000);
	run_case("zip re-zipped", b.data, b.len, n.data, n.len, 0, &c);
	/* PDF written anew by another tool */
	bw_buf_reset(&b);
	gen_pdf(&b, &r, 600000);
	bw_buf_reset(&n);
	gen_pdf(&n, &r, 640000);
	run_case("pdf re-saved", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.blocks_rewritten > 40);
	/* PDF incremental save: objects appended after %%EOF */
	bw_buf_reset(&b);
	gen_pdf(&b, &r, 600000);
	bw_buf_reset(&n);
	put(&n, b.data, b.len);
	puts_(&n, "5 0 obj\n<< /Annots [] >>\nendobj\nxref\n0 1\n"
	          "trailer\n<< /Prev 123456 >>\nstartxref\n600123\n%%EOF\n");
	run_case("pdf incremental save", b.data, b.len, n.data, n.len, 0, &c);

	/* a preallocated download being filled with compressed data */
	bw_buf_reset(&b);
	if (bw_buf_reserve(&b, 2 << 20))
		abort();
	memset(b.data, 0, 2 << 20);
	b.len = 2 << 20;
	bw_buf_reset(&n);
	put_rand(&n, &r, 2 << 20);
	run_case("prealloc filled", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.blocks_filled == c.blocks_compared && c.entropy_up == 0);
	bw_buf_release(&b);
	bw_buf_release(&n);
	free(rb);
}

/* A text file replaced in place by a container holding it: suspicious 0,
 * container_new 1 (gzip -c f > f.tmp && mv is the usual way; in place
 * happens with `gpg -o f --yes -c f`-like tools). */
static void test_containers(void)
{
	struct rng r = {555};
	struct bw_sample_cmp c;
	struct bw_buf b, n;
	bw_buf_init(&b, 0);
	bw_buf_init(&n, 0);
	gen_text(&b, &r, 400000);

	size_t cap = ZSTD_compressBound(b.len);
	if (bw_buf_reserve(&n, cap))
		abort();
	size_t z = ZSTD_compress(n.data, cap, b.data, b.len, 3);
	CHECK(!ZSTD_isError(z));
	n.len = z;
	run_case("text -> zstd", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.container_new == 1 && c.new_type == BW_FT_ZSTD);

	struct {
		const char *name, *head;
		size_t hl;
		enum bw_ftype t;
	} hs[] = {
		{"text -> gzip", "\x1f\x8b\x08\0\x12\x34\x56\x67\0\3", 10, BW_FT_GZIP},
		{"text -> xz", "\xfd" "7zXZ\0\0\4\xe6\xd6\xb4\x46", 12, BW_FT_XZ},
		{"text -> gpg -c", "\x8c\x0d\x04\x09\x03\x08\x1a\x2b\x3c\x4d\x5e\x6f"
		                   "\x70\x81\xff\xd2", 16, BW_FT_GPG},
		{"text -> age", "age-encryption.org/v1\n-> scrypt abc 18\nxyz\n--- "
		                "def\n", 49, BW_FT_AGE},
		{"text -> 7z", "7z\xbc\xaf\x27\x1c\0\4", 8, BW_FT_7Z},
	};
	for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) {
		bw_buf_reset(&n);
		put(&n, hs[i].head, hs[i].hl);
		put_rand(&n, &r, 150000);
		run_case(hs[i].name, b.data, b.len, n.data, n.len, 0, &c);
		CHECK(c.container_new == 1 && c.new_type == hs[i].t);
	}
	bw_buf_reset(&n);
	puts_(&n, "-----BEGIN PGP MESSAGE-----\n\n");
	uint8_t rb[120000];
	rfill(&r, rb, sizeof rb);
	put_b64(&n, rb, sizeof rb, 64, "\n");
	puts_(&n, "\n=njUN\n-----END PGP MESSAGE-----\n");
	run_case("text -> gpg armored", b.data, b.len, n.data, n.len, 0, &c);
	CHECK(c.container_new == 1 && c.b64_camouflage == 1);

	/* but an archive whose own stripes are encrypted is not excused */
	bw_buf_reset(&n);
	put(&n, hs[0].head, hs[0].hl);
	put_rand(&n, &r, 300000);
	bw_buf_reset(&b);
	put(&b, n.data, n.len);
	enc_stripes(&r, n.data, n.len, 1);
	run_case("gzip stripes@16", b.data, b.len, n.data, n.len, 1, &c);
	CHECK(c.intermittent == 1 && c.container_new == 0);
	bw_buf_release(&b);
	bw_buf_release(&n);
}

static void test_new_files(void)
{
	struct rng r = {31337};
	struct bw_buf b;
	bw_buf_init(&b, 0);
	put_rand(&b, &r, 300000);
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 1);
	int fd = memfd_with(b.data, b.len);
	CHECK_EQ_INT(bw_new_file_ciphertext_like(fd), 1);
	CHECK(lseek(fd, 0, SEEK_CUR) == 7);
	close(fd);
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, 5000), 1);
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, 100), 0); /* too small */
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(NULL, 0), 0);
	CHECK_EQ_INT(bw_new_file_ciphertext_like(-1), BW_EINVAL);
	memcpy(b.data, "\x1f\x8b\x08\0", 4);
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 0); /* gzip */
	bw_buf_reset(&b);
	gen_jpeg(&b, &r, 200000);
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 0);
	bw_buf_reset(&b);
	gen_text(&b, &r, 100000);
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 0);
	bw_buf_reset(&b);
	uint8_t rb[90000];
	rfill(&r, rb, sizeof rb);
	put_b64(&b, rb, sizeof rb, 76, "\n");
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 1);
	bw_buf_reset(&b);
	puts_(&b, "-----BEGIN CERTIFICATE-----\n");
	put_b64(&b, rb, 1200, 64, "\n");
	puts_(&b, "-----END CERTIFICATE-----\n");
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 0);
	/* a preallocated (sparse) new file */
	bw_buf_reset(&b);
	if (bw_buf_reserve(&b, 1 << 20))
		abort();
	memset(b.data, 0, 1 << 20);
	b.len = 1 << 20;
	CHECK_EQ_INT(bw_new_mem_ciphertext_like(b.data, b.len), 0);
	bw_buf_release(&b);
}

/* I/O stays bounded however large the file: a 256 MiB sparse pair. */
static void test_bounded(void)
{
	struct bw_sample_cmp c;
	int fo = memfd_create("old", MFD_CLOEXEC), fn = memfd_create("new", MFD_CLOEXEC);
	CHECK(fo >= 0 && fn >= 0);
	CHECK(ftruncate(fo, (off_t)256 << 20) == 0);
	CHECK(ftruncate(fn, ((off_t)256 << 20) + 4096) == 0);
	uint8_t blk[4096];
	struct rng r = {5};
	rfill(&r, blk, sizeof blk);
	for (off_t off = 0; off < (off_t)256 << 20; off += (off_t)1 << 20) {
		CHECK(pwrite(fo, "some old text\n", 14, off) == 14);
		CHECK(pwrite(fn, blk, sizeof blk, off) == (ssize_t)sizeof blk);
	}
	CHECK(bw_sample_compare(fo, fn, &c) == 0);
	/* old: 64 + 68 + 48*4 + 1 KiB; new: the same + 81 shifted blocks */
	CHECK(c.bytes_read <= 2 * (64 + 68 + 48 * 4 + 1) * 1024 + 81 * 4096);
	CHECK(c.blocks_compared >= 70);
	if (verbose)
		fprintf(stderr, "256 MiB pair: %llu bytes read, %u blocks\n",
		        (unsigned long long)c.bytes_read, c.blocks_compared);
	close(fo);
	close(fn);
	CHECK(bw_sample_compare(-1, -1, &c) == BW_EINVAL);
	/* errors from the descriptors come back as codes */
	int bad = memfd_create("gone", MFD_CLOEXEC);
	CHECK(bad >= 0);
	close(bad);
	CHECK(bw_sample_compare(bad, bad, &c) < 0);
	CHECK(bw_new_file_ciphertext_like(bad) < 0);
	CHECK(bw_sample_compare_mem(NULL, 5, blk, 1, &c) == BW_EINVAL);
	CHECK(bw_sample_compare_mem(blk, 1, blk, 1, NULL) == BW_EINVAL);
}

int main(void)
{
	const char *v = getenv("BW_TEST_VERBOSE");
	verbose = v && *v && *v != '0';
	if (verbose)
		fprintf(stderr,
		        "| case                   | types           | cmp/chg/sh/rw "
		        "| H old new | dH old new | frac  | runs/b | enc | MFEBICW | S |\n");
	test_entropy();
	test_base64();
	test_detect();
	test_destroyed();
	test_benign();
	test_containers();
	test_new_files();
	test_bounded();
	TEST_DONE();
}

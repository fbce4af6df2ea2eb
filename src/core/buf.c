/* Bounded byte buffers and views, varints, hex. */
#include <bulwark/core.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bw_buf_init(struct bw_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max ? max : BW_BUF_MAX_DEFAULT;
}

void bw_buf_release(struct bw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void bw_buf_reset(struct bw_buf *b) { b->len = 0; }

int bw_buf_reserve(struct bw_buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return BW_ETOOBIG;
	size_t need = b->len + extra + 1; /* spare byte for bw_buf_cstr */
	if (need <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	uint8_t *p = realloc(b->data, ncap);
	if (!p)
		return BW_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int bw_buf_append(struct bw_buf *b, const void *p, size_t n)
{
	int r = bw_buf_reserve(b, n);
	if (r)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int bw_buf_put_u8(struct bw_buf *b, uint8_t v) { return bw_buf_append(b, &v, 1); }

int bw_buf_put_u32le(struct bw_buf *b, uint32_t v)
{
	uint8_t t[4];
	put_le32(t, v);
	return bw_buf_append(b, t, 4);
}

int bw_buf_put_u64le(struct bw_buf *b, uint64_t v)
{
	uint8_t t[8];
	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	return bw_buf_append(b, t, 8);
}

int bw_buf_put_varint(struct bw_buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	while (v >= 0x80) {
		t[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	t[n++] = (uint8_t)v;
	return bw_buf_append(b, t, n);
}

int bw_buf_put_svarint(struct bw_buf *b, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	return bw_buf_put_varint(b, z);
}

int bw_buf_put_bytes(struct bw_buf *b, const void *p, size_t n)
{
	int r = bw_buf_put_varint(b, n);
	return r ? r : bw_buf_append(b, p, n);
}

int bw_buf_printf(struct bw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return BW_EINVAL;
	int r = bw_buf_reserve(b, (size_t)n);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *bw_buf_cstr(struct bw_buf *b)
{
	if (!b->data)
		return "";
	b->data[b->len] = 0; /* reserve() always keeps one spare byte */
	return (const char *)b->data;
}

int bw_view_take(struct bw_view *v, size_t n, const uint8_t **out)
{
	if (n > v->len)
		return BW_EFORMAT;
	*out = v->p;
	v->p += n;
	v->len -= n;
	return 0;
}

int bw_view_u8(struct bw_view *v, uint8_t *out)
{
	if (v->len < 1)
		return BW_EFORMAT;
	*out = *v->p++;
	v->len--;
	return 0;
}

int bw_view_u32le(struct bw_view *v, uint32_t *out)
{
	const uint8_t *p;
	if (bw_view_take(v, 4, &p))
		return BW_EFORMAT;
	*out = get_le32(p);
	return 0;
}

int bw_view_u64le(struct bw_view *v, uint64_t *out)
{
	const uint8_t *p;
	if (bw_view_take(v, 8, &p))
		return BW_EFORMAT;
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	*out = x;
	return 0;
}

int bw_view_varint(struct bw_view *v, uint64_t *out)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t c;
		if (bw_view_u8(v, &c))
			return BW_EFORMAT;
		if (shift == 63 && c > 1)
			return BW_EFORMAT;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = x;
			return 0;
		}
	}
	return BW_EFORMAT;
}

int bw_view_svarint(struct bw_view *v, int64_t *out)
{
	uint64_t z;
	if (bw_view_varint(v, &z))
		return BW_EFORMAT;
	*out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
	return 0;
}

int bw_view_bytes(struct bw_view *v, size_t max, const uint8_t **out,
                  size_t *n)
{
	uint64_t len;
	if (bw_view_varint(v, &len) || len > max || len > v->len)
		return BW_EFORMAT;
	*n = (size_t)len;
	return bw_view_take(v, (size_t)len, out);
}

void bw_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int bw_hex_decode(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!s[2 * i] || !s[2 * i + 1])
			return BW_EFORMAT;
		int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
		if (a < 0 || b < 0)
			return BW_EFORMAT;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return s[2 * n] ? BW_EFORMAT : 0;
}

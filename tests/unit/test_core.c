/* Core: buffers and their limits, bounded views, varints, hex, time. */
#include <bulwark/core.h>

#include "test.h"

int main(void)
{
	struct bw_buf b;
	bw_buf_init(&b, 16);
	CHECK(bw_buf_append(&b, "0123456789", 10) == 0);
	CHECK(bw_buf_append(&b, "0123456789", 10) == BW_ETOOBIG);
	CHECK(b.len == 10);
	CHECK(bw_buf_append(&b, "012345", 6) == 0);
	CHECK(b.len == 16);
	CHECK(strcmp(bw_buf_cstr(&b), "0123456789012345") == 0);
	bw_buf_release(&b);

	/* varints round-trip at the edges; views never read past the end */
	uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX};
	int64_t svals[] = {0, -1, 1, INT64_MIN, INT64_MAX, -1000000};
	bw_buf_init(&b, 0);
	for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
		CHECK(bw_buf_put_varint(&b, vals[i]) == 0);
	for (size_t i = 0; i < sizeof svals / sizeof *svals; i++)
		CHECK(bw_buf_put_svarint(&b, svals[i]) == 0);
	CHECK(bw_buf_put_bytes(&b, "xyz", 3) == 0);
	struct bw_view v = bw_view_make(b.data, b.len);
	for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
		uint64_t x = 0;
		CHECK(bw_view_varint(&v, &x) == 0);
		CHECK(x == vals[i]);
	}
	for (size_t i = 0; i < sizeof svals / sizeof *svals; i++) {
		int64_t x = 0;
		CHECK(bw_view_svarint(&v, &x) == 0);
		CHECK(x == svals[i]);
	}
	const uint8_t *p;
	size_t n;
	CHECK(bw_view_bytes(&v, 10, &p, &n) == 0 && n == 3 && !memcmp(p, "xyz", 3));
	CHECK(v.len == 0);
	uint8_t u8;
	CHECK(bw_view_u8(&v, &u8) == BW_EFORMAT);
	/* every truncation of the encoding fails cleanly */
	int ok = 1;
	for (size_t cut = 0; cut < b.len; cut++) {
		struct bw_view t = bw_view_make(b.data, cut);
		uint64_t x;
		int64_t y;
		size_t i = 0;
		for (; i < sizeof vals / sizeof *vals; i++)
			if (bw_view_varint(&t, &x))
				break;
		if (i == sizeof vals / sizeof *vals) {
			size_t j = 0;
			for (; j < sizeof svals / sizeof *svals; j++)
				if (bw_view_svarint(&t, &y))
					break;
			if (j == sizeof svals / sizeof *svals && !bw_view_bytes(&t, 10, &p, &n))
				ok = 0; /* a truncated input decoded whole */
		}
	}
	CHECK(ok);
	bw_buf_release(&b);

	/* over-long varint and length beyond the view */
	uint8_t bad[11];
	memset(bad, 0xff, sizeof bad);
	v = bw_view_make(bad, sizeof bad);
	uint64_t x;
	CHECK(bw_view_varint(&v, &x) == BW_EFORMAT);
	uint8_t blen[] = {5, 'a', 'b'};
	v = bw_view_make(blen, sizeof blen);
	CHECK(bw_view_bytes(&v, 100, &p, &n) == BW_EFORMAT);

	/* hex */
	char h[9];
	uint8_t raw[4] = {0xde, 0xad, 0xbe, 0xef}, back[4];
	bw_hex_encode(raw, 4, h);
	CHECK(strcmp(h, "deadbeef") == 0);
	CHECK(bw_hex_decode("DEADbeef", back, 4) == 0 && !memcmp(raw, back, 4));
	CHECK(bw_hex_decode("deadbee", back, 4) == BW_EFORMAT);
	CHECK(bw_hex_decode("deadbeefff", back, 4) == BW_EFORMAT);
	CHECK(bw_hex_decode("deadbexf", back, 4) == BW_EFORMAT);

	/* time: format and parse round-trip at ns precision */
	char ts[40];
	int64_t t = 1795000000123456789LL, t2 = 0;
	bw_time_format(t, ts);
	CHECK(strcmp(ts, "2026-11-18T11:06:40.123456789Z") == 0);
	CHECK(bw_time_parse(ts, &t2) == 0 && t2 == t);
	CHECK(bw_time_parse("2026-11-18T12:06:40+01:00", &t2) == 0 &&
	      t2 == 1795000000000000000LL);
	CHECK(bw_time_parse("2026-13-01", &t2) == BW_EINVAL);
	CHECK(bw_time_parse("yesterday", &t2) == BW_EINVAL);

	/* error detail: the first message wins until cleared */
	bw_err_clear();
	CHECK(bw_errf(BW_EIO, "first %d", 1) == BW_EIO);
	bw_errf(BW_EIO, "second");
	CHECK(strcmp(bw_err_msg(), "first 1") == 0);
	bw_err_clear();
	CHECK(strcmp(bw_err_msg(), "") == 0);
	TEST_DONE();
}

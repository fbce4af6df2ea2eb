/* Pack writer and header reader.
 *
 * The writer streams blobs through a small buffer into a backend temp
 * descriptor while hashing every byte, so a 16 MiB pack costs 256 KiB of
 * RAM plus its blob list.  The reader never trusts a length: the header
 * length, the count and every blob length are bounded before use, and the
 * blobs must tile the pack exactly. */
#include "pack.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WBUF_SIZE ((size_t)256 << 10)
#define TAIL_GUESS ((size_t)64 << 10)
#define HDR_MAGIC "BWPK"
#define HDR_VERSION 2
#define HDR_GROUP_FIRST 0x80
#define HDR_GROUP_MORE 0x40
/* smallest encoded entry: type, ID, one one-byte varint (a group member) */
#define HDR_ENTRY_MIN (1 + BW_ID_LEN + 1)
/* smallest stored blob: seal overhead plus the codec byte */
#define BLOB_MIN (BW_SEAL_OVERHEAD + 1)

static const char header_ad[] = "bulwark pack header";

struct bw_pack_writer {
	struct bw_backend *be;
	int fd;
	struct bw_hash *sha;
	uint8_t *wbuf;
	size_t wlen;
	uint64_t size; /* bytes written so far, buffered ones included */
	struct bw_pack_blob *blobs;
	size_t n, cap;
	/* the pending group */
	struct bw_blob_ctx *gctx;
	const struct bw_keys *gkeys;
	struct bw_group_member *gm;
	size_t gn;
	struct bw_buf graw, gsealed;
};

int bw_pack_writer_new(struct bw_backend *be, enum bw_hash_alg alg,
                       struct bw_pack_writer **out)
{
	struct bw_pack_writer *w = calloc(1, sizeof *w);
	int r;

	*out = NULL;
	if (!w)
		return BW_ENOMEM;
	w->be = be;
	w->fd = -1;
	bw_buf_init(&w->graw, BW_GROUP_RAW_MAX);
	bw_buf_init(&w->gsealed, BW_GROUP_RAW_MAX + ((size_t)1 << 20));
	w->wbuf = malloc(WBUF_SIZE);
	w->sha = bw_hash_new(alg);
	if (!w->wbuf || !w->sha) {
		r = BW_ENOMEM;
		goto out;
	}
	if ((r = be->ops->temp(be, &w->fd))) {
		w->fd = -1;
		goto out;
	}
	*out = w;
	w = NULL;
out:
	bw_pack_writer_abort(w);
	return r;
}

void bw_pack_writer_abort(struct bw_pack_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->sha) {
		struct bw_id dummy;
		bw_hash_final(w->sha, &dummy); /* frees */
	}
	free(w->wbuf);
	free(w->blobs);
	free(w->gm);
	if (w->graw.data)
		bw_wipe(w->graw.data, w->graw.cap);
	bw_buf_release(&w->graw);
	bw_buf_release(&w->gsealed);
	free(w);
}

static int flush(struct bw_pack_writer *w)
{
	int r = 0;
	if (w->wlen) {
		r = bw_write_full(w->fd, w->wbuf, w->wlen);
		w->wlen = 0;
		if (r)
			r = bw_errf(r, "pack: writing the staging file failed: %s",
			            bw_strerror(r));
	}
	return r;
}

static int put(struct bw_pack_writer *w, const uint8_t *p, size_t n)
{
	int r;
	bw_hash_update(w->sha, p, n);
	w->size += n;
	if (n > WBUF_SIZE - w->wlen) {
		if ((r = flush(w)))
			return r;
		if (n >= WBUF_SIZE) {
			r = bw_write_full(w->fd, p, n);
			return r ? bw_errf(r, "pack: writing the staging file "
			                      "failed: %s", bw_strerror(r))
			         : 0;
		}
	}
	memcpy(w->wbuf + w->wlen, p, n);
	w->wlen += n;
	return 0;
}

static int blobs_room(struct bw_pack_writer *w, size_t more)
{
	if (w->n + more > BW_PACK_MAX_BLOBS)
		return bw_errf(BW_ETOOBIG, "pack: too many blobs");
	while (w->n + more > w->cap) {
		size_t ncap = w->cap ? 2 * w->cap : 64;
		struct bw_pack_blob *nb = realloc(w->blobs, ncap * sizeof *nb);
		if (!nb)
			return BW_ENOMEM;
		w->blobs = nb;
		w->cap = ncap;
	}
	return 0;
}

int bw_pack_writer_add(struct bw_pack_writer *w, uint8_t type,
                       const struct bw_id *id, const uint8_t *stored,
                       size_t n, uint32_t raw_length)
{
	int r;
	if (n > UINT32_MAX || w->size + n > UINT32_MAX)
		return bw_errf(BW_ETOOBIG, "pack: too many blobs or bytes");
	if (n < BLOB_MIN)
		return bw_errf(BW_EINVAL, "pack: stored blob of %zu bytes", n);
	if ((r = blobs_room(w, 1)))
		return r;
	struct bw_pack_blob *b = &w->blobs[w->n];
	b->id = *id;
	b->type = type;
	b->offset = (uint32_t)w->size;
	b->length = (uint32_t)n;
	b->raw_length = raw_length;
	b->grouped = 0;
	if ((r = put(w, stored, n)))
		return r;
	w->n++;
	return 0;
}

/* Seal the pending group and append it. */
static int group_flush(struct bw_pack_writer *w)
{
	int r;
	if (!w->gn)
		return 0;
	if ((r = bw_group_encode(w->gctx, w->gkeys, w->gm, w->gn, w->graw.data,
	                         w->graw.len, &w->gsealed)))
		return r;
	size_t n = w->gsealed.len;
	if (w->size + n > UINT32_MAX)
		return bw_errf(BW_ETOOBIG, "pack: too many bytes");
	if ((r = blobs_room(w, w->gn)))
		return r;
	for (size_t i = 0; i < w->gn; i++) {
		struct bw_pack_blob *b = &w->blobs[w->n + i];
		b->id = w->gm[i].id;
		b->type = w->gm[i].type;
		b->offset = (uint32_t)w->size;
		b->length = (uint32_t)n;
		b->raw_length = w->gm[i].raw_length;
		b->grouped = 1;
	}
	if ((r = put(w, w->gsealed.data, n)))
		return r;
	w->n += w->gn;
	w->gn = 0;
	bw_buf_reset(&w->graw);
	return 0;
}

int bw_pack_writer_add_grouped(struct bw_pack_writer *w, struct bw_blob_ctx *c,
                               const struct bw_keys *k, uint8_t type,
                               const struct bw_id *id, const uint8_t *p,
                               size_t n)
{
	int r;
	if (n >= BW_GROUP_BLOB_MAX || n > UINT32_MAX)
		return bw_errf(BW_EINVAL, "pack: %zu bytes is too big for a group", n);
	if (!w->gm && !(w->gm = malloc(BW_GROUP_MAX_MEMBERS * sizeof *w->gm)))
		return BW_ENOMEM;
	w->gctx = c;
	w->gkeys = k;
	if ((r = bw_buf_append(&w->graw, p, n)))
		return r;
	w->gm[w->gn].id = *id;
	w->gm[w->gn].type = type;
	w->gm[w->gn].raw_length = (uint32_t)n;
	w->gn++;
	if (w->graw.len >= BW_GROUP_TARGET || w->gn == BW_GROUP_MAX_MEMBERS)
		return group_flush(w);
	return 0;
}

uint64_t bw_pack_writer_size(const struct bw_pack_writer *w)
{
	return w->size + w->graw.len;
}

uint32_t bw_pack_writer_count(const struct bw_pack_writer *w)
{
	return (uint32_t)(w->n + w->gn);
}

static int header_encode(const struct bw_pack_blob *b, size_t n,
                         struct bw_buf *out)
{
	int r, grouped = 0;
	/* version 1 when there is no group: older readers can read it */
	for (size_t i = 0; i < n && !grouped; i++)
		grouped = b[i].grouped;
	if ((r = bw_buf_append(out, HDR_MAGIC, 4)) ||
	    (r = bw_buf_put_u8(out, grouped ? HDR_VERSION : 1)) ||
	    (r = bw_buf_put_varint(out, n)))
		return r;
	for (size_t i = 0; i < n; i++) {
		int more = bw_pack_same_bytes(b, i);
		uint8_t t = b[i].type | (more ? HDR_GROUP_MORE
		                              : b[i].grouped ? HDR_GROUP_FIRST : 0);
		if ((r = bw_buf_put_u8(out, t)) ||
		    (r = bw_buf_append(out, b[i].id.b, BW_ID_LEN)) ||
		    (!more && (r = bw_buf_put_varint(out, b[i].length))) ||
		    (r = bw_buf_put_varint(out, b[i].raw_length)))
			return r;
	}
	return 0;
}

int bw_pack_writer_finish(struct bw_pack_writer *w, const struct bw_keys *k,
                          struct bw_id *pack_id, struct bw_pack_blob **blobs,
                          size_t *n)
{
	struct bw_buf hdr, sealed;
	char name[2 * BW_ID_LEN + 1];
	uint8_t len4[4];
	int r;

	*blobs = NULL;
	*n = 0;
	if ((r = group_flush(w))) {
		bw_pack_writer_abort(w);
		return r;
	}
	bw_buf_init(&hdr, BW_PACK_MAX_HEADER);
	bw_buf_init(&sealed, BW_PACK_MAX_HEADER + BW_SEAL_OVERHEAD);
	if ((r = header_encode(w->blobs, w->n, &hdr)))
		goto out;
	if ((r = bw_buf_reserve(&sealed, hdr.len + BW_SEAL_OVERHEAD)))
		goto out;
	if ((r = bw_seal(k->enc, header_ad, sizeof header_ad - 1, hdr.data,
	                 hdr.len, sealed.data)))
		goto out;
	sealed.len = hdr.len + BW_SEAL_OVERHEAD;
	put_le32(len4, (uint32_t)sealed.len);
	if ((r = put(w, sealed.data, sealed.len)) || (r = put(w, len4, 4)) ||
	    (r = flush(w)))
		goto out;
	bw_hash_final(w->sha, pack_id);
	w->sha = NULL;
	bw_id_hex(pack_id, name);
	/* write_temp owns the descriptor from here on, success or not */
	r = w->be->ops->write_temp(w->be, BW_OBJ_PACK, name, w->fd, w->size);
	w->fd = -1;
	if (r) {
		r = bw_errf(r, "pack %s: storing failed: %s", name,
		            bw_strerror(r));
		goto out;
	}
	*blobs = w->blobs;
	*n = w->n;
	w->blobs = NULL;
out:
	bw_buf_release(&hdr);
	bw_buf_release(&sealed);
	bw_pack_writer_abort(w);
	return r;
}

int bw_pack_header_decode(const uint8_t *p, size_t n,
                          struct bw_pack_blob **blobs, size_t *count)
{
	struct bw_view v = bw_view_make(p, n);
	struct bw_pack_blob *b = NULL;
	const uint8_t *magic, *id;
	uint8_t version;
	uint64_t cnt, off = 0;
	int r = BW_EFORMAT;

	*blobs = NULL;
	*count = 0;
	if (bw_view_take(&v, 4, &magic) || memcmp(magic, HDR_MAGIC, 4) ||
	    bw_view_u8(&v, &version))
		goto out;
	if (version < 1 || version > HDR_VERSION) {
		r = BW_EVERSION;
		goto out;
	}
	if (bw_view_varint(&v, &cnt) || cnt > BW_PACK_MAX_BLOBS ||
	    cnt > v.len / HDR_ENTRY_MIN)
		goto out;
	b = malloc((cnt ? (size_t)cnt : 1) * sizeof *b);
	if (!b) {
		r = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		uint64_t len, raw;
		uint8_t t;
		if (bw_view_u8(&v, &t))
			goto out;
		uint8_t flags = t & (HDR_GROUP_FIRST | HDR_GROUP_MORE);
		b[i].type = t & ~(HDR_GROUP_FIRST | HDR_GROUP_MORE);
		if (b[i].type > BW_BLOB_TREE ||
		    (flags && version < 2) ||
		    flags == (HDR_GROUP_FIRST | HDR_GROUP_MORE) ||
		    (flags == HDR_GROUP_MORE && (!i || !b[i - 1].grouped)) ||
		    bw_view_take(&v, BW_ID_LEN, &id))
			goto out;
		memcpy(b[i].id.b, id, BW_ID_LEN);
		b[i].grouped = flags != 0;
		if (flags == HDR_GROUP_MORE) {
			/* shares the bytes of the group it continues */
			if (bw_view_varint(&v, &raw) || raw > UINT32_MAX)
				goto out;
			b[i].offset = b[i - 1].offset;
			b[i].length = b[i - 1].length;
			b[i].raw_length = (uint32_t)raw;
			continue;
		}
		if (bw_view_varint(&v, &len) || bw_view_varint(&v, &raw) ||
		    len < BLOB_MIN || len > UINT32_MAX - off ||
		    raw > UINT32_MAX)
			goto out;
		b[i].offset = (uint32_t)off;
		b[i].length = (uint32_t)len;
		b[i].raw_length = (uint32_t)raw;
		off += len;
	}
	if (v.len)
		goto out; /* trailing bytes */
	*blobs = b;
	*count = (size_t)cnt;
	b = NULL;
	r = 0;
out:
	free(b);
	return r;
}

int bw_pack_header_parse(const struct bw_keys *k, const uint8_t *tail,
                         size_t tail_len, uint64_t pack_size,
                         struct bw_pack_blob **blobs, size_t *n,
                         size_t *need)
{
	struct bw_pack_blob *b = NULL;
	uint8_t *pt = NULL;
	size_t cnt = 0;
	uint64_t end = 0;
	int r;

	*blobs = NULL;
	*n = 0;
	*need = 0;
	if (tail_len > pack_size)
		return BW_EINVAL;
	if (pack_size < 4 + BW_SEAL_OVERHEAD)
		return BW_EFORMAT;
	if (tail_len < 4) {
		*need = 4;
		return BW_ETOOBIG;
	}
	uint64_t hlen = get_le32(tail + tail_len - 4);
	if (hlen < BW_SEAL_OVERHEAD ||
	    hlen > BW_PACK_MAX_HEADER + BW_SEAL_OVERHEAD ||
	    hlen + 4 > pack_size)
		return BW_EFORMAT;
	if (hlen + 4 > tail_len) {
		*need = (size_t)hlen + 4;
		return BW_ETOOBIG;
	}
	size_t plen = (size_t)hlen - BW_SEAL_OVERHEAD;
	pt = malloc(plen ? plen : 1);
	if (!pt)
		return BW_ENOMEM;
	r = bw_open(k->enc, header_ad, sizeof header_ad - 1,
	            tail + tail_len - 4 - hlen, (size_t)hlen, pt);
	if (r)
		goto out;
	if ((r = bw_pack_header_decode(pt, plen, &b, &cnt)))
		goto out;
	if (cnt)
		end = (uint64_t)b[cnt - 1].offset + b[cnt - 1].length;
	if (end != pack_size - hlen - 4) {
		r = BW_EFORMAT; /* blobs do not tile the pack */
		goto out;
	}
	*blobs = b;
	*n = cnt;
	b = NULL;
out:
	free(b);
	free(pt);
	return r;
}

int bw_pack_read_header(struct bw_backend *be, const struct bw_keys *k,
                        const char *name, struct bw_pack_blob **blobs,
                        size_t *n)
{
	struct bw_buf tail;
	uint64_t size;
	size_t want, need = 0;
	int r;

	*blobs = NULL;
	*n = 0;
	bw_buf_init(&tail, BW_PACK_MAX_HEADER + BW_SEAL_OVERHEAD + 4);
	if ((r = bw_be_stat(be, BW_OBJ_PACK, name, &size)))
		goto out;
	want = size < TAIL_GUESS ? (size_t)size : TAIL_GUESS;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (want == 0) {
			r = BW_EFORMAT;
			break;
		}
		bw_buf_reset(&tail);
		if ((r = bw_be_read(be, BW_OBJ_PACK, name, size - want, want,
		                    &tail)))
			goto out;
		if (tail.len != want) {
			r = BW_EFORMAT;
			break;
		}
		r = bw_pack_header_parse(k, tail.data, tail.len, size, blobs, n,
		                         &need);
		if (r != BW_ETOOBIG || need <= want || need > size)
			break;
		want = need;
	}
	if (r == BW_ETOOBIG)
		r = BW_EFORMAT; /* a second re-read cannot be needed */
	if (r)
		r = bw_errf(r, "pack %s: cannot read the header: %s", name,
		            bw_strerror(r));
out:
	bw_buf_release(&tail);
	return r;
}

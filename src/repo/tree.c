/* Tree blobs: one directory listing, binary encoded.
 *
 * Format (all integers are LEB128 varints unless noted; "svarint" is a
 * zigzag-encoded signed varint; "bytes" is a varint length then that many
 * raw bytes):
 *
 *   magic      4 bytes  "BWTR"
 *   version    u8       1
 *   count      varint   number of nodes (<= BW_TREE_MAX_NODES)
 *   count times, a node:
 *     name     bytes    1..BW_NAME_MAX bytes, no '/' or NUL, not "." or
 *                       "..", strictly increasing by bw_node_cmp_name()
 *                       (bytewise, a prefix sorts first)
 *     type     u8       enum bw_node_type (1..7)
 *     mode     varint   permission bits, <= 07777
 *     uid      varint   <= UINT32_MAX
 *     gid      varint   <= UINT32_MAX
 *     user     bytes    0..BW_OWNER_MAX bytes, no NUL
 *     group    bytes    0..BW_OWNER_MAX bytes, no NUL
 *     size     varint
 *     mtime_ns svarint  nanoseconds since the epoch
 *     atime_ns svarint
 *     ctime_ns svarint
 *     dev      varint
 *     ino      varint
 *     nlink    varint
 *     rdev     varint
 *     target   bytes    symlink target, 0..BW_TARGET_MAX bytes, no NUL;
 *                       empty unless type is SYMLINK
 *     nxattrs  varint
 *     nxattrs times:
 *       name   bytes    1..BW_XATTR_NAME_MAX bytes, no NUL
 *       value  bytes    0..BW_XATTR_MAX_VALUE bytes
 *     if type is FILE:
 *       ncontent varint
 *       ncontent times 32 raw bytes: data blob IDs in file order
 *     if type is DIR:
 *       32 raw bytes: the subtree's blob ID
 *
 * Nothing may follow the last node.  The whole tree is at most
 * BW_TREE_MAX_BYTES.
 *
 * The encoding is canonical: every varint must use its shortest form, so a
 * decoder that accepts a tree and an encoder fed the result produce the
 * same bytes again.  That keeps tree blob IDs (and so deduplication of
 * unchanged directories) stable, and it makes the fuzz target's round trip
 * check byte-exact.
 *
 * xattrs are stored in the order given; the encoder does not sort them.
 *
 * Decoding is zero-copy: names, strings, xattr values and content IDs
 * point into the plaintext buffer, which the tree owns (tree->raw). */
#include <bulwark/repo.h>

#include <stdlib.h>
#include <string.h>

#define TREE_MAGIC "BWTR"
#define TREE_MAGIC_LEN 4
#define TREE_VERSION 1

/* Limits for fields repo.h does not bound. */
#define BW_OWNER_MAX 256      /* user and group names */
#define BW_TARGET_MAX 4096    /* symlink target (PATH_MAX) */
#define BW_XATTR_NAME_MAX 255 /* Linux XATTR_NAME_MAX */
#define BW_MODE_MAX 07777

/* Smallest possible encoded node: 2 (name) + 1 (type) + 3 (mode, uid,
 * gid) + 2 (user, group) + 1 (size) + 3 (times) + 4 (dev..rdev) + 1
 * (target) + 1 (nxattrs).  Types with more fields only get larger. */
#define NODE_MIN_BYTES 18
/* Smallest encoded xattr: 2 (name) + 1 (empty value). */
#define XATTR_MIN_BYTES 3

_Static_assert(sizeof(struct bw_id) == BW_ID_LEN && _Alignof(struct bw_id) == 1,
               "content IDs point into unaligned plaintext");

int bw_node_cmp_name(const char *a, size_t al, const char *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	if (al == bl)
		return 0;
	return al < bl ? -1 : 1;
}

/* 0 if name is a valid directory entry name. */
static int name_ok(const char *name, size_t len)
{
	if (len < 1 || len > BW_NAME_MAX)
		return -1;
	if (memchr(name, '/', len) || memchr(name, 0, len))
		return -1;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return -1;
	return 0;
}

static int has_nul(const void *p, size_t n)
{
	return n && memchr(p, 0, n) != NULL;
}

/* ---- encoding ------------------------------------------------------------ */

/* Checks one node against everything decode checks; returns a short
 * description of the problem or NULL. */
static const char *node_problem(const struct bw_node *nd)
{
	if (!nd->name || name_ok(nd->name, nd->name_len))
		return "invalid name";
	if (nd->type < BW_NODE_FILE || nd->type > BW_NODE_SOCK)
		return "invalid type";
	if (nd->mode > BW_MODE_MAX)
		return "mode has bits outside 07777";
	if ((nd->user_len && !nd->user) || nd->user_len > BW_OWNER_MAX ||
	    has_nul(nd->user, nd->user_len))
		return "invalid user name";
	if ((nd->group_len && !nd->group) || nd->group_len > BW_OWNER_MAX ||
	    has_nul(nd->group, nd->group_len))
		return "invalid group name";
	if ((nd->target_len && !nd->target) || nd->target_len > BW_TARGET_MAX ||
	    has_nul(nd->target, nd->target_len))
		return "invalid symlink target";
	if (nd->target_len && nd->type != BW_NODE_SYMLINK)
		return "target set on a node that is not a symlink";
	if (nd->nxattrs && !nd->xattrs)
		return "xattrs missing";
	for (size_t i = 0; i < nd->nxattrs; i++) {
		const struct bw_xattr *x = &nd->xattrs[i];
		if (!x->name || x->name_len < 1 ||
		    x->name_len > BW_XATTR_NAME_MAX ||
		    has_nul(x->name, x->name_len))
			return "invalid xattr name";
		if ((x->value_len && !x->value) ||
		    x->value_len > BW_XATTR_MAX_VALUE)
			return "invalid xattr value";
	}
	if (nd->type == BW_NODE_FILE && nd->ncontent && !nd->content)
		return "content IDs missing";
	return NULL;
}

static int encode_node(const struct bw_node *nd, struct bw_buf *out)
{
	int r = 0;
#define PUT(call)                                                          \
	do {                                                               \
		if ((r = (call)) != 0)                                     \
			return r;                                          \
	} while (0)
	PUT(bw_buf_put_bytes(out, nd->name, nd->name_len));
	PUT(bw_buf_put_u8(out, nd->type));
	PUT(bw_buf_put_varint(out, nd->mode));
	PUT(bw_buf_put_varint(out, nd->uid));
	PUT(bw_buf_put_varint(out, nd->gid));
	PUT(bw_buf_put_bytes(out, nd->user, nd->user_len));
	PUT(bw_buf_put_bytes(out, nd->group, nd->group_len));
	PUT(bw_buf_put_varint(out, nd->size));
	PUT(bw_buf_put_svarint(out, nd->mtime_ns));
	PUT(bw_buf_put_svarint(out, nd->atime_ns));
	PUT(bw_buf_put_svarint(out, nd->ctime_ns));
	PUT(bw_buf_put_varint(out, nd->dev));
	PUT(bw_buf_put_varint(out, nd->ino));
	PUT(bw_buf_put_varint(out, nd->nlink));
	PUT(bw_buf_put_varint(out, nd->rdev));
	PUT(bw_buf_put_bytes(out, nd->target, nd->target_len));
	PUT(bw_buf_put_varint(out, nd->nxattrs));
	for (size_t i = 0; i < nd->nxattrs; i++) {
		const struct bw_xattr *x = &nd->xattrs[i];
		PUT(bw_buf_put_bytes(out, x->name, x->name_len));
		PUT(bw_buf_put_bytes(out, x->value, x->value_len));
	}
	if (nd->type == BW_NODE_FILE) {
		PUT(bw_buf_put_varint(out, nd->ncontent));
		for (size_t i = 0; i < nd->ncontent; i++)
			PUT(bw_buf_append(out, nd->content[i].b, BW_ID_LEN));
	} else if (nd->type == BW_NODE_DIR) {
		PUT(bw_buf_append(out, nd->subtree.b, BW_ID_LEN));
	}
#undef PUT
	return r;
}

int bw_tree_encode(const struct bw_node *nodes, size_t n, struct bw_buf *out)
{
	size_t start = out->len;
	int r;

	if (n && !nodes)
		return bw_errf(BW_EINVAL, "tree encode: no nodes given");
	if (n > BW_TREE_MAX_NODES)
		return bw_errf(BW_ETOOBIG, "tree encode: %zu nodes, limit %d", n,
		               BW_TREE_MAX_NODES);
	for (size_t i = 0; i < n; i++) {
		const char *why = node_problem(&nodes[i]);
		if (why)
			return bw_errf(BW_EINVAL, "tree encode: node %zu: %s", i,
			               why);
		if (i && bw_node_cmp_name(nodes[i - 1].name,
		                          nodes[i - 1].name_len, nodes[i].name,
		                          nodes[i].name_len) >= 0)
			return bw_errf(BW_EINVAL,
			               "tree encode: node %zu: names not sorted "
			               "or not unique", i);
	}

	if ((r = bw_buf_append(out, TREE_MAGIC, TREE_MAGIC_LEN)) ||
	    (r = bw_buf_put_u8(out, TREE_VERSION)) ||
	    (r = bw_buf_put_varint(out, n)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((r = encode_node(&nodes[i], out)))
			goto out;
		if (out->len - start > BW_TREE_MAX_BYTES) {
			r = BW_ETOOBIG;
			goto out;
		}
	}
out:
	if (r) {
		out->len = start;
		if (r == BW_ETOOBIG)
			bw_errf(r, "tree encode: more than %zu bytes or output "
			        "buffer full", BW_TREE_MAX_BYTES);
	}
	return r;
}

/* ---- decoding ------------------------------------------------------------ */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* A varint in its shortest form. */
static int get_varint(struct bw_view *v, uint64_t *out)
{
	size_t before = v->len;
	if (bw_view_varint(v, out))
		return BW_EFORMAT;
	return before - v->len == varint_len(*out) ? 0 : BW_EFORMAT;
}

static int get_svarint(struct bw_view *v, int64_t *out)
{
	uint64_t z;
	if (get_varint(v, &z))
		return BW_EFORMAT;
	*out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
	return 0;
}

static int get_u32(struct bw_view *v, uint32_t *out)
{
	uint64_t x;
	if (get_varint(v, &x) || x > UINT32_MAX)
		return BW_EFORMAT;
	*out = (uint32_t)x;
	return 0;
}

/* Shortest-form varint length (<= max) then bytes. */
static int get_bytes(struct bw_view *v, size_t max, const uint8_t **p,
                     size_t *n)
{
	uint64_t len;
	if (get_varint(v, &len) || len > max || len > v->len)
		return BW_EFORMAT;
	*n = (size_t)len;
	return bw_view_take(v, *n, p);
}

static int get_string(struct bw_view *v, size_t max, const char **p,
                      size_t *n)
{
	const uint8_t *b;
	if (get_bytes(v, max, &b, n) || has_nul(b, *n))
		return BW_EFORMAT;
	*p = (const char *)b;
	return 0;
}

struct decoder {
	struct bw_view v;
	struct bw_xattr *xs; /* grows; nodes hold counts until fixed up */
	size_t nxs, capxs;
};

static int push_xattr(struct decoder *d, const struct bw_xattr *x)
{
	if (d->nxs == d->capxs) {
		size_t ncap = d->capxs ? d->capxs * 2 : 16;
		struct bw_xattr *p = realloc(d->xs, ncap * sizeof *p);
		if (!p)
			return BW_ENOMEM;
		d->xs = p;
		d->capxs = ncap;
	}
	d->xs[d->nxs++] = *x;
	return 0;
}

/* Parses one node into nd; returns a description of the problem or NULL.
 * *err receives BW_ENOMEM if that was the problem. */
static const char *decode_node(struct decoder *d, struct bw_node *nd, int *err)
{
	struct bw_view *v = &d->v;
	const uint8_t *p;
	uint64_t x;

	memset(nd, 0, sizeof *nd);
	if (get_bytes(v, BW_NAME_MAX, &p, &nd->name_len))
		return "name truncated or too long";
	nd->name = (const char *)p;
	if (name_ok(nd->name, nd->name_len))
		return "invalid name";
	if (bw_view_u8(v, &nd->type))
		return "truncated";
	if (nd->type < BW_NODE_FILE || nd->type > BW_NODE_SOCK)
		return "unknown node type";
	if (get_u32(v, &nd->mode) || nd->mode > BW_MODE_MAX)
		return "invalid mode";
	if (get_u32(v, &nd->uid) || get_u32(v, &nd->gid))
		return "invalid uid or gid";
	if (get_string(v, BW_OWNER_MAX, &nd->user, &nd->user_len) ||
	    get_string(v, BW_OWNER_MAX, &nd->group, &nd->group_len))
		return "invalid user or group name";
	if (get_varint(v, &nd->size) || get_svarint(v, &nd->mtime_ns) ||
	    get_svarint(v, &nd->atime_ns) || get_svarint(v, &nd->ctime_ns) ||
	    get_varint(v, &nd->dev) || get_varint(v, &nd->ino) ||
	    get_varint(v, &nd->nlink) || get_varint(v, &nd->rdev))
		return "truncated or malformed number";
	if (get_string(v, BW_TARGET_MAX, &nd->target, &nd->target_len))
		return "invalid symlink target";
	if (nd->target_len && nd->type != BW_NODE_SYMLINK)
		return "target on a node that is not a symlink";
	if (get_varint(v, &x) || x > v->len / XATTR_MIN_BYTES)
		return "invalid xattr count";
	nd->nxattrs = (size_t)x;
	for (size_t i = 0; i < nd->nxattrs; i++) {
		struct bw_xattr xa;
		if (get_string(v, BW_XATTR_NAME_MAX, &xa.name, &xa.name_len) ||
		    xa.name_len == 0)
			return "invalid xattr name";
		if (get_bytes(v, BW_XATTR_MAX_VALUE, &xa.value, &xa.value_len))
			return "invalid xattr value";
		if ((*err = push_xattr(d, &xa)))
			return "out of memory";
	}
	if (nd->type == BW_NODE_FILE) {
		if (get_varint(v, &x) || x > v->len / BW_ID_LEN)
			return "invalid content count";
		nd->ncontent = (size_t)x;
		if (bw_view_take(v, nd->ncontent * BW_ID_LEN, &p))
			return "content truncated";
		nd->content = (const struct bw_id *)(const void *)p;
	} else if (nd->type == BW_NODE_DIR) {
		if (bw_view_take(v, BW_ID_LEN, &p))
			return "subtree ID truncated";
		memcpy(nd->subtree.b, p, BW_ID_LEN);
	}
	return NULL;
}

int bw_tree_decode(struct bw_buf *raw, struct bw_tree *out)
{
	struct decoder d = {0};
	struct bw_node *nodes = NULL;
	size_t n = 0, cap = 0;
	const uint8_t *p;
	uint8_t version;
	uint64_t count;
	int r = BW_EFORMAT;

	memset(out, 0, sizeof *out);
	/* Take the buffer first so that every exit path owns it. */
	out->raw = *raw;
	raw->data = NULL;
	raw->len = raw->cap = 0;

	if (out->raw.len > BW_TREE_MAX_BYTES) {
		r = bw_errf(BW_EFORMAT, "tree: %zu bytes, limit %zu",
		            out->raw.len, BW_TREE_MAX_BYTES);
		goto out;
	}
	d.v = bw_view_make(out->raw.data, out->raw.len);
	if (bw_view_take(&d.v, TREE_MAGIC_LEN, &p) ||
	    memcmp(p, TREE_MAGIC, TREE_MAGIC_LEN)) {
		r = bw_errf(BW_EFORMAT, "tree: bad magic");
		goto out;
	}
	if (bw_view_u8(&d.v, &version)) {
		r = bw_errf(BW_EFORMAT, "tree: truncated header");
		goto out;
	}
	if (version != TREE_VERSION) {
		r = bw_errf(BW_EVERSION, "tree: format version %u not supported",
		            version);
		goto out;
	}
	if (get_varint(&d.v, &count) || count > BW_TREE_MAX_NODES ||
	    count > d.v.len / NODE_MIN_BYTES) {
		r = bw_errf(BW_EFORMAT, "tree: invalid node count");
		goto out;
	}
	/* Grow as nodes are actually parsed, so that a lying count cannot
	 * make us allocate much more than the input justifies. */
	cap = count < 1024 ? (size_t)count : 1024;
	if (cap && !(nodes = calloc(cap, sizeof *nodes))) {
		r = BW_ENOMEM;
		goto out;
	}
	for (n = 0; n < count; n++) {
		if (n == cap) {
			size_t ncap = cap * 2 < count ? cap * 2 : (size_t)count;
			struct bw_node *np = realloc(nodes, ncap * sizeof *np);
			if (!np) {
				r = BW_ENOMEM;
				goto out;
			}
			nodes = np;
			cap = ncap;
		}
		int err = 0;
		const char *why = decode_node(&d, &nodes[n], &err);
		if (why) {
			r = err ? err : bw_errf(BW_EFORMAT, "tree: node %zu: %s",
			                        n, why);
			goto out;
		}
		if (n && bw_node_cmp_name(nodes[n - 1].name,
		                          nodes[n - 1].name_len, nodes[n].name,
		                          nodes[n].name_len) >= 0) {
			r = bw_errf(BW_EFORMAT,
			            "tree: node %zu: names not sorted or not unique",
			            n);
			goto out;
		}
	}
	if (d.v.len) {
		r = bw_errf(BW_EFORMAT, "tree: %zu bytes of trailing garbage",
		            d.v.len);
		goto out;
	}
	/* xattrs went into one growing array; point the nodes at it now that
	 * it will not move again. */
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		nodes[i].xattrs = nodes[i].nxattrs ? d.xs + off : NULL;
		off += nodes[i].nxattrs;
	}
	out->nodes = nodes;
	out->n = n;
	out->xattr_store = d.xs;
	nodes = NULL;
	d.xs = NULL;
	r = 0;
out:
	free(nodes);
	free(d.xs);
	if (r)
		bw_tree_release(out);
	return r;
}

void bw_tree_release(struct bw_tree *t)
{
	free(t->nodes);
	free(t->xattr_store);
	bw_buf_release(&t->raw);
	memset(t, 0, sizeof *t);
}

const struct bw_node *bw_tree_find(const struct bw_tree *t, const char *name,
                                   size_t len)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bw_node *nd = &t->nodes[mid];
		int c = bw_node_cmp_name(nd->name, nd->name_len, name, len);
		if (c == 0)
			return nd;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* libFuzzer target for the tree decoder.  Whatever decodes must encode
 * back to exactly the same bytes (the format is canonical), and decode
 * again to the same tree. */
#include <bulwark/repo.h>

#include <stdlib.h>
#include <string.h>

static int same(const void *a, size_t al, const void *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static int node_eq(const struct bw_node *a, const struct bw_node *b)
{
	if (!same(a->name, a->name_len, b->name, b->name_len) ||
	    a->type != b->type || a->mode != b->mode || a->uid != b->uid ||
	    a->gid != b->gid || !same(a->user, a->user_len, b->user, b->user_len) ||
	    !same(a->group, a->group_len, b->group, b->group_len) ||
	    a->size != b->size || a->mtime_ns != b->mtime_ns ||
	    a->atime_ns != b->atime_ns || a->ctime_ns != b->ctime_ns ||
	    a->dev != b->dev || a->ino != b->ino || a->nlink != b->nlink ||
	    a->rdev != b->rdev ||
	    !same(a->target, a->target_len, b->target, b->target_len) ||
	    a->nxattrs != b->nxattrs || a->ncontent != b->ncontent ||
	    !same(a->content, a->ncontent * BW_ID_LEN, b->content,
	          b->ncontent * BW_ID_LEN) ||
	    memcmp(&a->subtree, &b->subtree, sizeof a->subtree))
		return 0;
	for (size_t i = 0; i < a->nxattrs; i++)
		if (!same(a->xattrs[i].name, a->xattrs[i].name_len,
		          b->xattrs[i].name, b->xattrs[i].name_len) ||
		    !same(a->xattrs[i].value, a->xattrs[i].value_len,
		          b->xattrs[i].value, b->xattrs[i].value_len))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_buf in, enc;
	struct bw_tree t, t2;

	bw_buf_init(&in, 0);
	bw_buf_init(&enc, 0);
	if (bw_buf_append(&in, data, size))
		return 0;
	bw_err_clear();
	if (bw_tree_decode(&in, &t)) {
		if (in.data || t.nodes || t.raw.data)
			abort(); /* decode must consume and clean up */
		return 0;
	}
	if (bw_tree_encode(t.nodes, t.n, &enc))
		abort();
	if (!same(enc.data, enc.len, data, size))
		abort();
	if (bw_tree_decode(&enc, &t2))
		abort();
	if (t2.n != t.n)
		abort();
	for (size_t i = 0; i < t.n; i++) {
		if (!node_eq(&t.nodes[i], &t2.nodes[i]))
			abort();
		if (bw_tree_find(&t2, t.nodes[i].name, t.nodes[i].name_len) !=
		    &t2.nodes[i])
			abort();
	}
	bw_tree_release(&t);
	bw_tree_release(&t2);
	return 0;
}

/* Backend-independent wrappers: append-only enforcement and messages. */
#include "backend.h"

#include <string.h>

static const char *obj_names[BW_OBJ__N] = {
	"config", "key", "pack", "index", "snapshot", "lock", "plan",
};

const char *bw_obj_name(enum bw_obj t)
{
	return (unsigned)t < BW_OBJ__N ? obj_names[t] : "?";
}

int bw_obj_parse(const char *s, enum bw_obj *t)
{
	for (int i = 0; i < BW_OBJ__N; i++) {
		size_t l = strlen(obj_names[i]);
		/* accept plurals: "keys", "snapshots", "packs" */
		if (!strcmp(s, obj_names[i]) ||
		    (!strncmp(s, obj_names[i], l) && !strcmp(s + l, "s"))) {
			*t = (enum bw_obj)i;
			return 0;
		}
	}
	if (!strcmp(s, "data")) {
		*t = BW_OBJ_PACK;
		return 0;
	}
	return BW_EINVAL;
}

int bw_be_list(struct bw_backend *b, enum bw_obj t, bw_list_fn cb, void *arg)
{
	return b->ops->list(b, t, cb, arg);
}

int bw_be_read(struct bw_backend *b, enum bw_obj t, const char *name,
               uint64_t off, size_t len, struct bw_buf *out)
{
	int r = b->ops->read(b, t, name, off, len, out);
	if (r == BW_ENOENT)
		return bw_errf(r, "%s %s: missing from the repository",
		               bw_obj_name(t), name);
	if (r == BW_EFORMAT)
		return bw_errf(r, "%s %s: truncated (shorter than expected)",
		               bw_obj_name(t), name);
	if (r)
		return bw_errf(r, "%s %s: read failed: %s", bw_obj_name(t),
		               name, bw_strerror(r));
	return 0;
}

int bw_be_write(struct bw_backend *b, enum bw_obj t, const char *name,
                const void *p, size_t n)
{
	if (b->append_only && t == BW_OBJ_CONFIG)
		return bw_errf(BW_EPERM, "config: refused by append-only repository");
	int r = b->ops->write(b, t, name, p, n);
	if (r)
		return bw_errf(r, "%s %s: write failed: %s", bw_obj_name(t),
		               name, bw_strerror(r));
	return 0;
}

int bw_be_remove(struct bw_backend *b, enum bw_obj t, const char *name)
{
	if (b->append_only)
		return bw_errf(BW_EPERM, "%s %s: removal refused by append-only repository",
		               bw_obj_name(t), name);
	int r = b->ops->remove(b, t, name);
	if (r && r != BW_ENOENT)
		return bw_errf(r, "%s %s: remove failed: %s", bw_obj_name(t),
		               name, bw_strerror(r));
	return r;
}

int bw_be_stat(struct bw_backend *b, enum bw_obj t, const char *name,
               uint64_t *size)
{
	return b->ops->stat(b, t, name, size);
}

int bw_be_sync(struct bw_backend *b)
{
	int r = b->ops->sync ? b->ops->sync(b) : 0;
	if (r)
		return bw_errf(r, "%s: cannot flush to stable storage: %s",
		               b->location, bw_strerror(r));
	return 0;
}

void bw_be_free(struct bw_backend *b)
{
	if (b)
		b->ops->free(b);
}

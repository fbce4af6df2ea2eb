/* Deletion plans: the first phase of prune's two-phase deletion.
 *
 * A plan is an encrypted JSON object {"version":1, "time": RFC3339,
 * "packs": [hex...]} naming packs that no snapshot needed when it was
 * made.  Backups that start after a plan exists never deduplicate against
 * its packs; a later prune deletes them once no session that began before
 * the plan is still alive, after re-checking every snapshot. */
#include "repo_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct plist {
	struct bw_repo *r;
	struct bw_id *v;
	size_t n, cap;
};

int bw_plan_decode(const uint8_t *p, size_t n, int64_t *time_ns,
                   struct bw_id **packs, size_t *npacks)
{
	json_error_t e;
	json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &e);
	json_t *a, *t, *v;
	int r = BW_EFORMAT;
	*packs = NULL;
	*npacks = 0;
	if (!j || !json_is_object(j))
		goto out;
	v = json_object_get(j, "version");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		r = BW_EVERSION;
		goto out;
	}
	t = json_object_get(j, "time");
	a = json_object_get(j, "packs");
	if (!json_is_string(t) || bw_time_parse(json_string_value(t), time_ns) ||
	    !json_is_array(a) || json_array_size(a) > 10000000)
		goto out;
	size_t cnt = json_array_size(a);
	if (cnt && !(*packs = calloc(cnt, sizeof **packs))) {
		r = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_string(x) || bw_id_parse(json_string_value(x), &(*packs)[i]))
			goto out;
	}
	*npacks = cnt;
	r = 0;
out:
	if (r) {
		free(*packs);
		*packs = NULL;
	}
	json_decref(j);
	return r;
}

int bw_plan_encode(int64_t time_ns, const struct bw_id *packs, size_t n,
                   struct bw_buf *out)
{
	char ts[40], hex[2 * BW_ID_LEN + 1];
	bw_time_format(time_ns, ts);
	int r = bw_buf_printf(out, "{\"version\":1,\"time\":\"%s\",\"packs\":[", ts);
	for (size_t i = 0; i < n && !r; i++) {
		bw_id_hex(&packs[i], hex);
		r = bw_buf_printf(out, "%s\"%s\"", i ? "," : "", hex);
	}
	if (!r)
		r = bw_buf_printf(out, "]}");
	return r;
}

static int plan_one(void *arg, const char *name, uint64_t size)
{
	struct plist *l = arg;
	struct bw_buf b;
	struct bw_id *packs;
	size_t n;
	int64_t t;
	(void)size;
	bw_buf_init(&b, BW_OBJ_MAX);
	int r = bw_repo_load_obj(l->r, BW_OBJ_PLAN, name, &b);
	if (!r)
		r = bw_plan_decode(b.data, b.len, &t, &packs, &n);
	bw_buf_release(&b);
	if (r)
		return r; /* a damaged plan must stop backups from guessing */
	if (l->n + n > l->cap) {
		size_t nc = (l->n + n) * 2;
		void *v = realloc(l->v, nc * sizeof *l->v);
		if (!v) {
			free(packs);
			return BW_ENOMEM;
		}
		l->v = v;
		l->cap = nc;
	}
	if (n)
		memcpy(l->v + l->n, packs, n * sizeof *packs);
	l->n += n;
	free(packs);
	return 0;
}

int bw_plans_packs(struct bw_repo *r, struct bw_id **packs, size_t *n)
{
	struct plist l = {r, NULL, 0, 0};
	int rc = bw_be_list(r->be, BW_OBJ_PLAN, plan_one, &l);
	if (rc) {
		free(l.v);
		return rc;
	}
	*packs = l.v;
	*n = l.n;
	return 0;
}

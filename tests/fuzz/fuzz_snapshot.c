/* libFuzzer target for the snapshot JSON parser.  Whatever parses must
 * serialise, and the serialisation must parse to the same snapshot. */
#include <bulwark/repo.h>

#include <stdlib.h>
#include <string.h>

static int lists_eq(char **a, size_t an, char **b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (strcmp(a[i], b[i]))
			return 0;
	return 1;
}

static int snap_eq(const struct bw_snapshot *a, const struct bw_snapshot *b)
{
	return a->time_ns == b->time_ns &&
	       !memcmp(&a->tree, &b->tree, sizeof a->tree) &&
	       a->has_parent == b->has_parent &&
	       (!a->has_parent || !memcmp(&a->parent, &b->parent, sizeof a->parent)) &&
	       !strcmp(a->hostname, b->hostname) &&
	       !strcmp(a->username, b->username) &&
	       !strcmp(a->program_version, b->program_version) &&
	       a->uid == b->uid && a->gid == b->gid &&
	       lists_eq(a->paths, a->npaths, b->paths, b->npaths) &&
	       lists_eq(a->tags, a->ntags, b->tags, b->ntags) &&
	       lists_eq(a->excludes, a->nexcludes, b->excludes, b->nexcludes) &&
	       !memcmp(&a->summary, &b->summary, sizeof a->summary);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_snapshot s, s2;
	struct bw_buf out;

	bw_err_clear();
	if (bw_snapshot_from_json(data, size, &s))
		return 0;
	bw_buf_init(&out, 0);
	if (bw_snapshot_to_json(&s, &out))
		abort();
	if (bw_snapshot_from_json(out.data, out.len, &s2))
		abort();
	if (!snap_eq(&s, &s2))
		abort();
	for (size_t i = 0; i < s.ntags; i++)
		if (!bw_snapshot_has_tag(&s2, s.tags[i]))
			abort();
	bw_snapshot_release(&s);
	bw_snapshot_release(&s2);
	bw_buf_release(&out);
	return 0;
}

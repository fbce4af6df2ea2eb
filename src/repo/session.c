/* Sessions: non-exclusive announcements that a client is working on the
 * repository.  Nothing waits on them; prune reads them to know whether a
 * backup that began before its deletion plan may still be running. */
#include "repo_int.h"

#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bw_session {
	struct bw_repo *r;
	char kind[32];
	int64_t started_ns;
	struct bw_id obj;
	int have_obj;
};

static int session_write(struct bw_session *s)
{
	char host[256], ts[40], ts0[40];
	struct passwd *pw = getpwuid(getuid());
	if (gethostname(host, sizeof host))
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = 0;
	bw_time_format(bw_now_ns(), ts);
	bw_time_format(s->started_ns, ts0);
	json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:s}", "version", 1,
	                      "kind", s->kind, "host", host, "user",
	                      pw ? pw->pw_name : "unknown", "pid", (int)getpid(),
	                      "started", ts0, "refreshed", ts);
	if (!j)
		return BW_ENOMEM;
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!txt)
		return BW_ENOMEM;
	struct bw_id id;
	int r = bw_repo_save_obj(s->r, BW_OBJ_LOCK, txt, strlen(txt), &id);
	free(txt);
	if (r)
		return r;
	if (s->have_obj) {
		char old[2 * BW_ID_LEN + 1];
		bw_id_hex(&s->obj, old);
		if (bw_be_remove(s->r->be, BW_OBJ_LOCK, old) != BW_EPERM)
			bw_err_clear();
	}
	s->obj = id;
	s->have_obj = 1;
	return 0;
}

int bw_session_begin(struct bw_repo *r, const char *kind, struct bw_session **out)
{
	struct bw_session *s = calloc(1, sizeof *s);
	if (!s)
		return BW_ENOMEM;
	s->r = r;
	snprintf(s->kind, sizeof s->kind, "%s", kind);
	s->started_ns = bw_now_ns();
	int rc = session_write(s);
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int bw_session_refresh(struct bw_session *s) { return session_write(s); }

void bw_session_end(struct bw_session *s)
{
	if (!s)
		return;
	if (s->have_obj) {
		char name[2 * BW_ID_LEN + 1];
		bw_id_hex(&s->obj, name);
		if (bw_be_remove(s->r->be, BW_OBJ_LOCK, name))
			bw_err_clear(); /* append-only: the lock goes stale */
	}
	free(s);
}

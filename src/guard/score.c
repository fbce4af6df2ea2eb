/* Behaviour scores per process tree, and the response.
 *
 * A tree is a session (setsid(2) is where a program starts its own
 * tree).  The score is recomputed from counts of indicators, so one kind
 * of indicator alone cannot reach the threshold except by repetition on
 * several files:
 *   content = files encrypted in place
 *           + pairs of (new ciphertext-like file, original deleted or
 *             replaced) that belong together: sizes within 1/8 (+4 KiB)
 *             or the new name starting with the old one
 *   score   = 1.2 content + 1.0 wiped + 1.5 if a canary was touched
 *           + (content or wiped ? 0.3 renames-with-new-extension (max 6)
 *                                + 0.8 ransom note + 0.2 per further dir
 *                               : 0.1 renames (max 6) + 0.4 note)
 * Benign encryption writes new files in known container formats (gpg,
 * zstd, zip...) and destroys no original: it scores nothing. */
#include "guard_int.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* the guard's own ancestors: never frozen */
int gi_is_guard_ancestor(struct bw_guard *g, pid_t pid)
{
	pid_t p = g->self;
	for (int i = 0; i < 64 && p > 1; i++) {
		if (p == pid)
			return 1;
		struct bw_proc_info pi;
		if (bw_proc_info(p, &pi))
			break;
		p = pi.ppid;
	}
	return 0;
}

struct gi_tree *gi_tree_get(struct bw_guard *g, pid_t sid, int create)
{
	struct gi_tree *free_slot = NULL, *oldest = NULL;
	int64_t now = bw_now_ns();
	for (size_t i = 0; i < sizeof g->trees / sizeof *g->trees; i++) {
		struct gi_tree *t = &g->trees[i];
		if (t->sid == sid && sid) {
			if ((t->done_ns && now - t->done_ns > 5000000000LL) ||
			    (!t->frozen && now - t->last_ns > g->pol.window_ns)) {
				/* quiet for a whole window: start over */
				struct bw_pidset keep = t->members;
				keep.n = 0;
				memset(t, 0, sizeof *t);
				t->members = keep;
				t->sid = sid;
				t->first_ns = now;
			}
			return t;
		}
		if (!t->sid && !free_slot)
			free_slot = t;
		int idle = !t->frozen || (t->done_ns && now - t->done_ns > 5000000000LL);
		if (t->sid && idle && (!oldest || t->last_ns < oldest->last_ns))
			oldest = t;
	}
	if (!create)
		return NULL;
	struct gi_tree *t = free_slot ? free_slot : oldest;
	if (!t)
		return NULL;
	struct bw_pidset keep = t->members;
	keep.n = 0;
	memset(t, 0, sizeof *t);
	t->members = keep;
	t->sid = sid;
	t->first_ns = t->last_ns = now;
	return t;
}

int gi_tree_condemned(struct bw_guard *g, pid_t sid)
{
	int c = 0;
	pthread_mutex_lock(&g->lock);
	struct gi_tree *t = gi_tree_get(g, sid, 0);
	if (t)
		c = t->condemned;
	pthread_mutex_unlock(&g->lock);
	return c;
}

int gi_tree_suspect(struct bw_guard *g, pid_t sid)
{
	int c = 0;
	pthread_mutex_lock(&g->lock);
	struct gi_tree *t = gi_tree_get(g, sid, 0);
	/* ciphertext-like output alone is what backup tools and encryptors
	 * make: it makes a tree suspect only next to lost originals */
	if (t)
		c = !t->done_ns && (t->score > 0 || (t->cipher_new && t->deleted_read));
	pthread_mutex_unlock(&g->lock);
	return c;
}

int gi_tree_backlogged(struct bw_guard *g, pid_t sid)
{
	pthread_mutex_lock(&g->lock);
	struct gi_tree *t = gi_tree_get(g, sid, 0);
	int b = t && !t->done_ns && t->backlog >= GI_BACKLOG_MAX;
	pthread_mutex_unlock(&g->lock);
	return b;
}

/* Whether session sid was killed (and rolled back) in the last 10 s.
 * Called with g->lock held. */
static int recently_killed(const struct bw_guard *g, pid_t sid, int64_t now)
{
	for (size_t i = 0; i < sizeof g->killed / sizeof *g->killed; i++)
		if (g->killed[i].sid == sid && now - g->killed[i].ns < 10000000000LL)
			return 1;
	return 0;
}

/* What other sessions started by t's starter have done lately (content
 * evidence only); those not yet handled go into sibs (and *since).  Called
 * with g->lock held. */
static double sibling_score(const struct bw_guard *g, const struct gi_tree *t,
                            int64_t now, pid_t *sibs, int *nsib, int max,
                            int64_t *since)
{
	double sum = 0;
	if (nsib)
		*nsib = 0;
	if (!t->spawner)
		return 0;
	for (size_t i = 0; i < sizeof g->trees / sizeof *g->trees; i++) {
		const struct gi_tree *o = &g->trees[i];
		if (!o->sid || o->sid == t->sid || o->spawner != t->spawner ||
		    !o->first_bad_ns || now - o->first_bad_ns > g->pol.window_ns ||
		    !(o->damaged || o->pairs || o->wiped))
			continue;
		sum += o->score;
		/* sessions killed already have been rolled back with their
		 * judge: they count as evidence, not as work to redo */
		if (o->done_ns || recently_killed(g, o->sid, now))
			continue;
		if (nsib && *nsib < max)
			sibs[(*nsib)++] = o->sid;
		if (since && o->first_ns < *since)
			*since = o->first_ns;
	}
	return sum;
}

/* Every session sp started in the window, with evidence or not (a helper
 * may have finished before its file was judged), joins sibs unless it is
 * sid, there already, or handled. */
static void add_spawned(struct bw_guard *g, pid_t sp, pid_t sid, pid_t *sibs,
                        int *nsib, int max, int64_t *since)
{
	pid_t all[256];
	int64_t first = *since;
	size_t na = gi_spawned_by(g, sp, bw_now_ns() - g->pol.window_ns, all,
	                          sizeof all / sizeof *all, &first);
	pthread_mutex_lock(&g->lock);
	int64_t now = bw_now_ns();
	for (size_t i = 0; i < na; i++) {
		int have = all[i] == sid || recently_killed(g, all[i], now);
		for (int q = 0; q < *nsib && !have; q++)
			have = sibs[q] == all[i];
		if (!have && *nsib < max)
			sibs[(*nsib)++] = all[i];
	}
	pthread_mutex_unlock(&g->lock);
	if (first < *since)
		*since = first;
}

/* The sessions about to be killed and rolled back: those of the processes
 * in set (and each process's own pid: one stopped on its way into
 * setsid() names that session in its evidence) and the siblings.  Late
 * evidence from them is then no new attack. */
static void remember_killed(struct bw_guard *g, const struct bw_pidset *set,
                            const pid_t *sibs, int nsib)
{
	pid_t ks[128];
	int nks = 0;
	for (size_t k = 0; k < set->n && nks + 2 <= 128; k++) {
		struct bw_proc_info pi;
		pid_t cand[2] = {set->v[k], bw_proc_info(set->v[k], &pi) ? 0 : pi.sid};
		for (int c = 0; c < 2; c++) {
			int seen = cand[c] <= 1;
			for (int q = 0; q < nks && !seen; q++)
				seen = ks[q] == cand[c];
			if (!seen)
				ks[nks++] = cand[c];
		}
	}
	pthread_mutex_lock(&g->lock);
	unsigned n = sizeof g->killed / sizeof *g->killed;
	int64_t now = bw_now_ns();
	for (int q = 0; q < nks + nsib; q++) {
		g->killed[g->killed_next % n].sid = q < nks ? ks[q] : sibs[q - nks];
		g->killed[g->killed_next % n].ns = now;
		g->killed_next++;
	}
	pthread_mutex_unlock(&g->lock);
}

static double tree_score(const struct gi_tree *t)
{
	int content = t->damaged + t->pairs;
	/* a canary counts once: touching several (rm -rf, rsync --delete of
	 * a protected root) is still one kind of evidence */
	double s = 1.2 * content + 1.0 * t->wiped + (t->canary ? 1.5 : 0);
	int ext = t->renamed_ext < 6 ? t->renamed_ext : 6;
	if (content || t->wiped) {
		s += 0.3 * ext;
		if (t->notes)
			s += 0.8 + 0.2 * (t->note_dirs > 6 ? 5 : (t->note_dirs > 1 ? t->note_dirs - 1 : 0));
	} else {
		s += 0.1 * ext + (t->notes ? 0.4 : 0);
	}
	return s;
}

void gi_alert(struct bw_guard *g, const char *json_line)
{
	size_t n = strlen(json_line);
	char *l = malloc(n + 2);
	if (l) {
		memcpy(l, json_line, n);
		l[n] = '\n';
		if (bw_write_full(g->alert_fd, l, n + 1))
			bw_warn("guard: cannot write the alert log");
		free(l);
	}
	if (g->pol.use_syslog)
		syslog(LOG_ALERT | LOG_AUTHPRIV, "%s", json_line);
	if (g->alert_cb)
		g->alert_cb(json_line, g->alert_arg);
}

static json_t *proc_json(pid_t pid)
{
	json_t *o = json_object();
	struct bw_proc_info pi;
	char exe[4096], cmd[2048];
	json_object_set_new(o, "pid", json_integer(pid));
	if (!bw_proc_info(pid, &pi)) {
		json_object_set_new(o, "ppid", json_integer(pi.ppid));
		json_object_set_new(o, "sid", json_integer(pi.sid));
	}
	if (!bw_proc_exe(pid, exe, sizeof exe))
		gj_set_path(o, "exe", exe);
	if (!bw_proc_cmdline(pid, cmd, sizeof cmd))
		gj_set_path(o, "cmdline", cmd);
	return o;
}

/* Who to stop: the processes that acted, their ancestors inside the
 * session (a parent script that spawns one encryptor per file is part
 * of the attack) but not an interactive login shell, and every
 * descendant; a whole non-interactive session when it is not the
 * guard's own. */
static int build_set(struct bw_guard *g, struct gi_tree *t, struct bw_pidset *s)
{
	for (size_t i = 0; i < t->members.n; i++) {
		pid_t p = t->members.v[i];
		if (p == g->self || gi_is_guard_ancestor(g, p))
			continue;
		bw_pidset_add(s, p);
		for (int d = 0; d < 64; d++) {
			struct bw_proc_info pi;
			if (bw_proc_info(p, &pi) || pi.ppid <= 1)
				break;
			struct bw_proc_info pp;
			if (bw_proc_info(pi.ppid, &pp) || pp.sid != t->sid ||
			    gi_is_guard_ancestor(g, pi.ppid))
				break;
			if (pp.pid == pp.sid && pp.tty)
				break; /* an interactive shell */
			bw_pidset_add(s, pi.ppid);
			p = pi.ppid;
		}
	}
	struct bw_proc_info lead, me;
	pid_t whole = 0;
	if (!bw_proc_info(t->sid, &lead) && !lead.tty && t->sid > 1 &&
	    !gi_is_guard_ancestor(g, t->sid) &&
	    !(bw_proc_info(g->self, &me) == 0 && me.sid == t->sid))
		whole = t->sid;
	return bw_proc_freeze_closure(s, whole, 1, g->self);
}

/* Wait until the name thread has taken in every event already queued:
 * the deletes and renames of the processes just killed must be in the
 * journal before it is replayed. */
static void drain_names(struct bw_guard *g)
{
	int quiet = 0;
	for (int i = 0; i < 300 && quiet < 3; i++) {
		struct pollfd p = {g->name_fd, POLLIN, 0};
		int pending = poll(&p, 1, 0) > 0;
		pthread_mutex_lock(&g->qlock);
		int queued = g->qhead != g->qtail;
		pthread_mutex_unlock(&g->qlock);
		quiet = pending || queued || g->names_busy ? 0 : quiet + 1;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void respond_tree(struct bw_guard *g, pid_t sid);

/* What a rollback could not restore: logged, and named in the alert. */
struct rb_note {
	char failures[1024];
};

static void rb_note_file(const char *action, const char *path, const char *why,
                         void *arg)
{
	struct rb_note *n = arg;
	if (!why)
		return;
	bw_warn("guard: rollback: %s %s: %s", action, path, why);
	size_t l = strlen(n->failures);
	if (l + 8 < sizeof n->failures)
		snprintf(n->failures + l, sizeof n->failures - l, "%s%s: %s", l ? "; " : "",
		         path, why);
}

void *gi_responder_thread(void *arg)
{
	struct bw_guard *g = arg;
	pthread_mutex_lock(&g->lock);
	while (!*g->stop || g->resp_n) {
		if (!g->resp_n) {
			struct timespec ts = gi_deadline(200);
			pthread_cond_timedwait(&g->resp_cond, &g->lock, &ts);
			continue;
		}
		pid_t sid = g->resp_q[0];
		memmove(g->resp_q, g->resp_q + 1, (size_t)(--g->resp_n) * sizeof *g->resp_q);
		pthread_mutex_unlock(&g->lock);
		respond_tree(g, sid);
		pthread_mutex_lock(&g->lock);
	}
	g->resp_done = 1;
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void respond_tree(struct bw_guard *g, pid_t sid)
{
	struct bw_pidset set = {0};
	pthread_mutex_lock(&g->lock);
	struct gi_tree *t = gi_tree_get(g, sid, 0);
	/* done already: killed with the sessions it was judged with */
	if (!t || t->done_ns || recently_killed(g, sid, bw_now_ns())) {
		if (t && !t->done_ns)
			t->done_ns = bw_now_ns(); /* its slot can be reused */
		/* a starter stopped for it and left alive by that verdict (an
		 * interactive shell) goes on */
		if (t && t->spawner_stopped)
			kill(t->spawner, SIGCONT);
		pthread_mutex_unlock(&g->lock);
		return;
	}
	struct gi_tree snap = *t;
	/* members are read outside the lock: copy them */
	struct bw_pidset mem = {0};
	for (size_t i = 0; i < t->members.n; i++)
		bw_pidset_add(&mem, t->members.v[i]);
	snap.members = mem;
	pthread_mutex_unlock(&g->lock);

	int64_t t_freeze0 = bw_now_ns();
	build_set(g, &snap, &set);
	int64_t t_frozen = bw_now_ns();
	json_t *procs = json_array();
	for (size_t i = 0; i < set.n; i++)
		json_array_append_new(procs, proc_json(set.v[i]));

	/* the files it was writing when it was stopped have not been closed:
	 * judge them as they are now, through the descriptors the guard holds */
	struct gi_job open_eps[16];
	int nopen = 0;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->inode_cap && nopen < 16; i++) {
		struct gi_inode *in = &g->inodes[i];
		struct gi_wcopy *w = in->ino && in->writers > 0 && in->hold
		                   ? gi_wc_find(in, sid) : NULL;
		if (!w || w->ns <= 0)
			continue;
		struct gi_job *j = &open_eps[nopen];
		memset(j, 0, sizeof *j);
		if (gi_job_copy(j, w) || j->copy_ns <= 0)
			continue;
		if ((j->fd = dup(in->hold - 1)) < 0) {
			gi_job_release(j);
			continue;
		}
		j->ino = in->ino;
		nopen++;
	}
	pthread_mutex_unlock(&g->lock);
	pid_t actor = snap.members.n ? snap.members.v[0] : sid;
	for (int i = 0; i < nopen; i++) {
		struct stat est;
		struct gi_job *j = &open_eps[i];
		j->dev = fstat(j->fd, &est) ? 0 : est.st_dev;
		j->tgid = j->tid = actor;
		j->sid = sid;
		gi_enqueue(g, j);
	}

	/* decide: the tree is stopped, so only evidence already in flight can
	 * still arrive; wait for it (its closed files, queued name events), at
	 * most 250 ms, then kill at the kill score or let it go */
	double score = snap.score;
	for (int i = 0; i < 125; i++) {
		pthread_mutex_lock(&g->lock);
		t = gi_tree_get(g, sid, 0);
		int pending = t ? t->pending : 0;
		if (t)
			score = t->score;
		pthread_mutex_unlock(&g->lock);
		if (score >= g->pol.kill_score)
			break;
		struct pollfd p = {g->name_fd, POLLIN, 0};
		if (!pending && !g->names_busy && poll(&p, 1, 0) <= 0 && i >= 2)
			break;
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	int kill_it = score >= g->pol.kill_score;
	/* Sessions started by one process count together: an attacker that
	 * puts every helper in a session of its own (fork, setsid, one file)
	 * is judged as one, and its starter is stopped with them. */
	pid_t sibs[256], spawner = 0;
	int nsib = 0;
	int64_t since = snap.first_ns;
	pid_t sp = snap.spawner;
	double sibsum = 0;
	if (sp > 1 && sp != g->self && !gi_is_guard_ancestor(g, sp)) {
		pthread_mutex_lock(&g->lock);
		sibsum = sibling_score(g, &snap, bw_now_ns(), sibs, &nsib,
		                       (int)(sizeof sibs / sizeof *sibs), &since);
		pthread_mutex_unlock(&g->lock);
		if (!kill_it && sibsum > 0 && score + sibsum >= g->pol.kill_score) {
			kill_it = 1;
			score += sibsum;
		}
		if (kill_it && sibsum > 0) {
			struct bw_proc_info pp;
			/* an interactive shell is never stopped: its sessions are */
			if (!bw_proc_info(sp, &pp) && !(pp.pid == pp.sid && pp.tty)) {
				struct bw_pidset more = {0};
				bw_pidset_add(&more, sp);
				bw_proc_freeze_closure(&more, 0, 1, g->self);
				for (size_t i = 0; i < more.n; i++)
					if (!bw_pidset_has(&set, more.v[i])) {
						bw_pidset_add(&set, more.v[i]);
						json_array_append_new(procs, proc_json(more.v[i]));
					}
				bw_pidset_release(&more);
				spawner = sp;
			}
			add_spawned(g, sp, sid, sibs, &nsib,
			            (int)(sizeof sibs / sizeof *sibs), &since);
		}
	}
	pthread_mutex_lock(&g->lock);
	t = gi_tree_get(g, sid, 0);
	if (t) {
		if (kill_it)
			t->condemned = 1;
		struct bw_pidset keep = snap.members;
		snap = *t; /* the indicators the decision saw */
		snap.members = keep;
	}
	pthread_mutex_unlock(&g->lock);
	snap.score = score;
	struct rb_note rn = {{0}};
	struct bw_guard_rollback_stats rs = {0};
	if (kill_it) {
		remember_killed(g, &set, sibs, nsib);
		bw_proc_signal_all(&set, SIGKILL);
		/* let the kernel reap them before their files are restored */
		for (int i = 0; i < 50; i++) {
			int alive = 0;
			for (size_t k = 0; k < set.n; k++) {
				struct bw_proc_info pi;
				if (!bw_proc_info(set.v[k], &pi))
					alive++;
			}
			if (!alive)
				break;
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		drain_names(g);
		struct bw_guard_rollback_opts ro = {0};
		ro.on_file = rb_note_file;
		ro.arg = &rn;
		ro.since_ns = since - 2000000000LL;
		int sids[1 + sizeof sibs / sizeof *sibs];
		sids[0] = sid;
		for (int i = 0; i < nsib; i++)
			sids[1 + i] = sibs[i];
		ro.pids = set.v;
		ro.npids = set.n;
		ro.sids = sids;
		ro.nsids = 1 + nsib;
		if (bw_guard_rollback(g->pol.state_dir, &ro, &rs) && !rn.failures[0])
			snprintf(rn.failures, sizeof rn.failures, "%s", bw_err_msg());
		bw_err_clear();
	} else {
		bw_proc_signal_all(&set, SIGCONT);
	}
	if (snap.spawner_stopped && !bw_pidset_has(&set, snap.spawner))
		kill(snap.spawner, SIGCONT); /* not killed: let it go */

	json_t *a = json_object();
	char ts[40];
	bw_time_format(bw_now_ns(), ts);
	json_object_set_new(a, "time", json_string(ts));
	json_object_set_new(a, "event", json_string(kill_it ? "ransomware" : "suspect"));
	json_object_set_new(a, "action", json_string(kill_it ? "killed" : "released"));
	json_object_set_new(a, "score", json_real(snap.score));
	json_object_set_new(a, "sid", json_integer(sid));
	if (kill_it && (nsib || spawner)) {
		/* the sessions judged with it, and the process that started them */
		json_t *ss = json_array();
		for (int i = 0; i < nsib; i++)
			json_array_append_new(ss, json_integer(sibs[i]));
		json_object_set_new(a, "sibling_sessions", ss);
		if (spawner)
			json_object_set_new(a, "spawner", json_integer(spawner));
	}
	json_t *ind = json_object();
	json_object_set_new(ind, "encrypted_in_place", json_integer(snap.damaged));
	json_object_set_new(ind, "new_ciphertext_files", json_integer(snap.cipher_new));
	json_object_set_new(ind, "originals_deleted_or_replaced", json_integer(snap.deleted_read));
	json_object_set_new(ind, "ciphertext_replacing_originals", json_integer(snap.pairs));
	json_object_set_new(ind, "renamed_new_extension", json_integer(snap.renamed_ext));
	json_object_set_new(ind, "ransom_notes", json_integer(snap.notes));
	json_object_set_new(ind, "canaries", json_integer(snap.canary));
	json_object_set_new(ind, "wiped", json_integer(snap.wiped));
	json_object_set_new(a, "indicators", ind);
	json_t *ev = json_array();
	for (int i = 0; i < snap.nevidence; i++)
		json_array_append_new(ev, json_string(snap.evidence[i]));
	json_object_set_new(a, "evidence", ev);
	json_object_set_new(a, "processes", procs);
	json_object_set_new(a, "first_event_ns", json_integer(snap.first_ns));
	json_object_set_new(a, "first_bad_ns", json_integer(snap.first_bad_ns));
	json_object_set_new(a, "frozen_ns", json_integer(t_frozen));
	json_object_set_new(a, "freeze_ms",
	                    json_real((double)(t_frozen - t_freeze0) / 1e6));
	if (kill_it) {
		json_t *rb = json_object();
		json_object_set_new(rb, "restored", json_integer((json_int_t)rs.restored));
		json_object_set_new(rb, "removed", json_integer((json_int_t)rs.removed));
		json_object_set_new(rb, "failed", json_integer((json_int_t)rs.failed));
		if (rn.failures[0])
			json_object_set_new(rb, "failures", json_string(rn.failures));
		json_object_set_new(a, "rollback", rb);
	}
	char *line = json_dumps(a, JSON_COMPACT);
	/* status keeps a summary of each verdict: the whole alert may be long */
	json_t *sum = json_object();
	static const char *keep[] = {"time", "action", "score", "sid", "indicators",
	                             "freeze_ms", "rollback"};
	for (size_t k = 0; k < sizeof keep / sizeof *keep; k++)
		json_object_set(sum, keep[k], json_object_get(a, keep[k]));
	json_object_set(sum, "exe", json_object_get(json_array_get(procs, 0), "exe"));
	char *sl = json_dumps(sum, JSON_COMPACT);
	json_decref(sum);
	json_decref(a);
	if (line)
		gi_alert(g, line);
	if (sl && strlen(sl) < sizeof g->verdicts[0]) {
		pthread_mutex_lock(&g->lock);
		snprintf(g->verdicts[g->verdict_n++ % 8], sizeof g->verdicts[0], "%s", sl);
		pthread_mutex_unlock(&g->lock);
	}
	free(sl);
	free(line);

	pthread_mutex_lock(&g->lock);
	t = gi_tree_get(g, sid, 0);
	if (t && kill_it) {
		/* dead: evidence still in flight for it is ignored, and after a
		 * few seconds its session id may be reused */
		t->done_ns = bw_now_ns();
	} else if (t) {
		/* let go: it keeps its score, and new evidence freezes it again */
		t->frozen = 0;
		t->condemned = 0;
		t->released_score = t->score;
	}
	pthread_mutex_unlock(&g->lock);
	bw_pidset_release(&set);
	bw_pidset_release(&mem);
}

static void gi_score_add_locked(struct bw_guard *g, pid_t tgid, pid_t sid,
                                const char *what, const char *path,
                                const struct gi_half *half);

static void base_of(const char *path, char out[64])
{
	const char *b = path ? strrchr(path, '/') : NULL;
	b = b ? b + 1 : (path ? path : "");
	snprintf(out, 64, "%s", b);
}

/* Do a ciphertext-like new file and a lost original belong together?
 * A rename over the original: only if the file renamed is that very
 * ciphertext (its inode).  A delete: the new file is another file whose
 * name starts with the old one (x.docx -> x.docx.locked) or whose size
 * is the old size give or take a header (encryption keeps the size). */
static int halves_match(const struct gi_half *c, const struct gi_half *l)
{
	if (c->ino && c->ino == l->lost_ino)
		return 0; /* the same file, created and deleted */
	if (l->ino)
		return c->ino == l->ino;
	uint64_t a = c->size, b = l->size, d = a > b ? a - b : b - a;
	uint64_t tol = 1024 + (a > b ? a : b) / 32;
	size_t n = strlen(l->base);
	return (n >= 3 && strcmp(c->base, l->base) && !strncmp(c->base, l->base, n)) ||
	       d <= tol;
}

/* Record one half of a (ciphertext, lost original) pair; a match with a
 * waiting other half makes a pair.  Lock held. */
static void pair_half(struct gi_tree *t, int cipher, const struct gi_half *h)
{
	struct gi_half *other = cipher ? t->half_lost : t->half_cipher;
	int *nother = cipher ? &t->nhalf_lost : &t->nhalf_cipher;
	for (int i = 0; i < *nother; i++) {
		int m = cipher ? halves_match(h, &other[i]) : halves_match(&other[i], h);
		if (m) {
			other[i] = other[--*nother];
			t->pairs++;
			return;
		}
	}
	struct gi_half *mine = cipher ? t->half_cipher : t->half_lost;
	int *nmine = cipher ? &t->nhalf_cipher : &t->nhalf_lost;
	if (*nmine < 8)
		mine[(*nmine)++] = *h;
	else
		mine[bw_now_ns() % 8] = *h; /* keep the ring fresh */
}

void gi_score_pair(struct bw_guard *g, pid_t tgid, pid_t sid, int cipher,
                   uint64_t size, uint64_t ino, uint64_t lost_ino, const char *path)
{
	struct gi_half h;
	memset(&h, 0, sizeof h);
	h.size = size;
	h.ino = ino;
	h.lost_ino = lost_ino;
	base_of(path, h.base);
	pthread_mutex_lock(&g->lock);
	gi_score_add_locked(g, tgid, sid, cipher ? "cipher_new" : "lost", path, &h);
}

void gi_score_add(struct bw_guard *g, pid_t tgid, pid_t sid, const char *what,
                  double pts, const char *path)
{
	(void)pts;
	pthread_mutex_lock(&g->lock);
	gi_score_add_locked(g, tgid, sid, what, path, NULL);
}

/* Called with g->lock held; releases it.  half: the pair half of a
 * "cipher_new" or "lost" indicator. */
static void gi_score_add_locked(struct bw_guard *g, pid_t tgid, pid_t sid,
                                const char *what, const char *path,
                                const struct gi_half *half)
{
	if (!sid) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	if (recently_killed(g, sid, bw_now_ns())) {
		pthread_mutex_unlock(&g->lock);
		return; /* killed and rolled back with another session */
	}
	struct gi_tree *t = gi_tree_get(g, sid, what != NULL);
	if (!t) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	if (t->done_ns) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	bw_pidset_add(&t->members, tgid);
	if (!what) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	if (!t->spawner)
		t->spawner = gi_spawner_of(g, sid);
	int64_t now = bw_now_ns();
	t->last_ns = now;
	if (!strcmp(what, "damaged")) t->damaged++;
	else if (!strcmp(what, "cipher_new")) { t->cipher_new++; if (half) pair_half(t, 1, half); }
	else if (!strcmp(what, "lost")) { t->deleted_read++; if (half) pair_half(t, 0, half); }
	else if (!strcmp(what, "ext")) t->renamed_ext++;
	else if (!strcmp(what, "note")) t->notes++;
	else if (!strcmp(what, "canary")) t->canary++;
	else if (!strcmp(what, "wiped")) t->wiped++;
	if (!t->first_bad_ns)
		t->first_bad_ns = now;
	if (path && t->nevidence < GT_EVIDENCE)
		snprintf(t->evidence[t->nevidence++], sizeof t->evidence[0], "%s: %.480s",
		         what, path);
	t->score = tree_score(t);
	/* with the other sessions its starter began (see note_spawner) */
	double group = t->score;
	if (t->spawner && t->score < g->pol.freeze_score &&
	    (t->damaged || t->pairs || t->wiped))
		group += sibling_score(g, t, now, NULL, NULL, 0, NULL);
	/* a tree let go after a freeze is frozen again only on new evidence */
	int respond = !t->frozen && group >= g->pol.freeze_score &&
	              t->score > t->released_score;
	if (respond && g->pol.mode == BW_GUARD_ENFORCE) {
		t->frozen = 1;
		if (t->score >= g->pol.kill_score)
			t->condemned = 1; /* from now on its writes are denied */
	}
	double score = t->score;
	if (respond && g->pol.mode == BW_GUARD_ENFORCE) {
		/* stop the known actors now; the responder then freezes the rest
		 * of the tree, which takes a /proc walk */
		for (size_t i = 0; i < t->members.n; i++)
			if (t->members.v[i] != g->self)
				kill(t->members.v[i], SIGSTOP);
		/* frozen on its siblings' evidence: their starter too, or it
		 * starts new sessions while the responder is busy */
		if (t->score < g->pol.freeze_score && t->spawner > 1 &&
		    !kill(t->spawner, SIGSTOP))
			t->spawner_stopped = 1;
	}
	pthread_mutex_unlock(&g->lock);
	if (!respond)
		return;
	if (g->pol.mode == BW_GUARD_ENFORCE) {
		pthread_mutex_lock(&g->lock);
		if (g->resp_n < (int)(sizeof g->resp_q / sizeof *g->resp_q))
			g->resp_q[g->resp_n++] = sid;
		pthread_cond_signal(&g->resp_cond);
		pthread_mutex_unlock(&g->lock);
	} else {
		char line[1024];
		snprintf(line, sizeof line,
		         "{\"event\":\"ransomware\",\"action\":\"alert-only\",\"sid\":%d,"
		         "\"score\":%.2f}", (int)sid, score);
		gi_alert(g, line);
		pthread_mutex_lock(&g->lock);
		t = gi_tree_get(g, sid, 0);
		if (t)
			t->frozen = 1; /* alert once per window */
		pthread_mutex_unlock(&g->lock);
	}
}

void bw_guard_report_gap(struct bw_guard *g, int64_t from_ns, int64_t to_ns,
                         const char *why)
{
	char a[40], b[40], line[1024];
	bw_time_format(from_ns, a);
	bw_time_format(to_ns, b);
	json_t *w = json_string(why ? why : "");
	char *ws = json_dumps(w, JSON_ENCODE_ANY);
	snprintf(line, sizeof line,
	         "{\"event\":\"coverage_gap\",\"from\":\"%s\",\"to\":\"%s\","
	         "\"seconds\":%.3f,\"why\":%s}", a, b,
	         (double)(to_ns - from_ns) / 1e9, ws ? ws : "\"\"");
	free(ws);
	json_decref(w);
	gi_alert(g, line);
	g->gap_reported = 1;
}

/* A guard that died without a supervisor (or with it) left a state file
 * that says it did not stop cleanly: the time since it was last updated
 * was not covered. */
void gi_check_gap(struct bw_guard *g)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/state.json", g->pol.state_dir);
	json_t *s = json_load_file(p, 0, NULL);
	if (!s)
		return;
	const char *upd = json_string_value(json_object_get(s, "updated"));
	int clean = json_is_true(json_object_get(s, "clean_stop"));
	int64_t t;
	if (!clean && upd && !bw_time_parse(upd, &t) && !g->gap_reported)
		bw_guard_report_gap(g, t, bw_now_ns(), "the previous guard did not stop cleanly");
	json_decref(s);
}

/* state.json for `bulwark guard status`: written atomically each second */
void gi_state_write(struct bw_guard *g)
{
	json_t *o = json_object();
	char ts[40];
	bw_time_format(bw_now_ns(), ts);
	json_object_set_new(o, "updated", json_string(ts));
	bw_time_format(g->started_ns, ts);
	json_object_set_new(o, "started", json_string(ts));
	json_object_set_new(o, "pid", json_integer(g->self));
	json_object_set_new(o, "clean_stop", json_boolean(g->clean_stop));
	json_object_set_new(o, "mode", json_string(g->pol.mode == BW_GUARD_ENFORCE
	                                           ? "enforce" : "monitor"));
	json_t *pr = json_array();
	for (int i = 0; i < g->pol.nprotect; i++)
		json_array_append_new(pr, json_string(g->pol.protect[i]));
	json_object_set_new(o, "protected", pr);
	pthread_mutex_lock(&g->lock);
	json_t *v = json_object();
	json_object_set_new(v, "copies", json_integer((json_int_t)g->copies_n));
	json_object_set_new(v, "copy_bytes", json_integer((json_int_t)g->vault_bytes));
	json_object_set_new(v, "budget_bytes", json_integer((json_int_t)g->pol.vault_budget));
	json_object_set_new(v, "files_held", json_integer((json_int_t)g->nheld));
	json_object_set_new(v, "files_unheld", json_integer((json_int_t)g->unheld));
	json_object_set_new(v, "files_known", json_integer((json_int_t)g->inode_n));
	json_object_set_new(o, "vault", v);
	json_t *c = json_object();
	json_object_set_new(c, "events", json_integer((json_int_t)g->events));
	json_object_set_new(c, "allowed", json_integer((json_int_t)g->allowed));
	json_object_set_new(c, "denied", json_integer((json_int_t)g->denied));
	json_object_set_new(c, "copies_made", json_integer((json_int_t)g->copies));
	json_object_set_new(c, "own_rewrites", json_integer((json_int_t)g->own_rewrites));
	json_object_set_new(c, "overflows", json_integer((json_int_t)g->overflows));
	json_object_set_new(c, "opens", json_integer((json_int_t)g->ev_open));
	json_object_set_new(c, "reads", json_integer((json_int_t)g->ev_read));
	json_object_set_new(c, "writes", json_integer((json_int_t)g->ev_write));
	json_object_set_new(c, "closes", json_integer((json_int_t)g->ev_close));
	json_object_set_new(o, "counters", c);
	json_t *vs = json_array();
	uint64_t n = g->verdict_n < 8 ? g->verdict_n : 8;
	for (uint64_t i = 0; i < n; i++) {
		json_t *j = json_loads(g->verdicts[(g->verdict_n - n + i) % 8], 0, NULL);
		if (j)
			json_array_append_new(vs, j);
	}
	json_object_set_new(o, "recent_verdicts", vs);
	pthread_mutex_unlock(&g->lock);
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (!s)
		return;
	/* no fsync: a lost state file only costs a stale status */
	char p[4200], tmp[4300];
	snprintf(p, sizeof p, "%s/state.json", g->pol.state_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		int ok = bw_write_full(fd, s, strlen(s)) == 0;
		close(fd);
		if (!ok || rename(tmp, p))
			bw_debug("guard: cannot write %s", p);
	}
	free(s);
}

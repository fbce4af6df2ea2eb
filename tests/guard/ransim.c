/*
 * bw-ransim: a SAFE ransomware emulator, for testing and benchmarking
 * `bulwark guard`.
 *
 * It does to a scratch tree what ransomware does to a real one (in-place
 * encryption, encrypted copies with the original deleted, renames, wipes,
 * intermittent encryption, writes through mmap, O_DIRECT and io_uring, many
 * processes), so that the guard's detection, freezing and rollback can be
 * measured.  It must never be able to hurt anything else, hence:
 *
 * SAFETY RULES
 *  1. Opt-in per tree.  `bw-ransim init DIR` writes DIR/.bw-ransim-marker
 *     (MARKER_MAGIC, then realpath(DIR)).  attack and decrypt refuse to run
 *     unless ROOT/.bw-ransim-marker is a regular file of exactly that form
 *     naming realpath(ROOT): a marker copied from another tree is refused.
 *     ROOT must be a directory; "/" and the top-level system directories
 *     (/etc, /usr, /home, ...) are refused even with a marker.
 *  2. Every file is reached by openat/statx relative to directory fds opened
 *     one component at a time from ROOT's fd, always with O_NOFOLLOW:
 *     symlinks are never followed, "." and ".." never used, anything on
 *     another mount (st_dev or mount id differs from ROOT's) is skipped,
 *     files with more than one hard link are skipped (the other link may be
 *     outside ROOT), and the marker file is never touched.
 *  3. No network code, no persistence, no privilege changes, no signals to
 *     other processes.  Its only helpers are its own children: fork(), an
 *     exec of /proc/self/exe, or /bin/sh running a script generated in a
 *     mkdtemp directory under /tmp (outside ROOT) that runs bw-ransim.
 *  4. The damage is a reversible keyed transform where it can be: ChaCha20
 *     (libsodium crypto_stream_chacha20_xor_ic) keyed by --key (default: the
 *     public test key DEFAULT_KEY), nonce = the first 8 bytes of
 *     BLAKE2b-128(path relative to ROOT, before any rename), keystream at
 *     the file offset.  `bw-ransim decrypt` reverses every variant except
 *     the wipers (truncate, punchhole) and --delete-backups-first.
 *  5. --log must be outside ROOT.
 *
 * The log gets "start <ns>" and then, per file, one line written with a
 * single write(2) (no stdio buffer, so it survives SIGKILL):
 *   <ns CLOCK_REALTIME before the first damaging syscall> <ns when done> <rel>
 * A file whose damage was under way when the process was killed has no
 * line: compare the tree with a manifest to see everything that changed.
 */
#include "ransim.h"

/* ---- the tree walk ------------------------------------------------------- */

static int wanted(struct walk *w, const char *name, const struct xst *st)
{
	const struct opts *o = w->c->o;
	int locked = o->ext[0] && has_suffix(name, o->ext);

	if (check_file(w->c, st) < 0 || !strcmp(name, MARKER_NAME) || !strcmp(name, NOTE_NAME) ||
	    !strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)))
		return 0;
	switch (w->kind) {
	case W_ATTACK:
		return !locked && st->size >= o->min_size && st->size <= o->max_size;
	case W_SUFFIX:
		return locked;
	default:
		return 1;
	}
}

static int walk_dir(struct walk *w, int dfd, const char *rel, unsigned depth);

static int walk_entry(struct walk *w, int dfd, const char *rel, const char *name, unsigned depth)
{
	struct xst st, st2;
	char *child;
	int sfd, r = 0;

	if (xstat(dfd, name, &st) < 0 || S_ISLNK(st.mode) || !in_root_fs(w->c, &st))
		return 0; /* vanished, a symlink, or another mount */
	if (!(child = join(rel, name)))
		return -ENOMEM;
	if (S_ISDIR(st.mode)) {
		if (depth >= MAX_DEPTH)
			goto skip;
		sfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			goto skip;
		if (xstat(sfd, "", &st2) < 0 || st2.ino != st.ino || !in_root_fs(w->c, &st2)) {
			close(sfd);
			goto skip;
		}
		r = walk_dir(w, sfd, child, depth + 1);
		goto skip;
	}
	if (w->bak && S_ISREG(st.mode) && is_backup_name(name) && check_file(w->c, &st) == 0)
		return tlist_push(w->bak, child, st.size, depth);
	if (wanted(w, name, &st))
		return tlist_push(w->t, child, st.size, depth);
skip:
	free(child);
	return r;
}

/* Takes ownership of dfd. */
static int walk_dir(struct walk *w, int dfd, const char *rel, unsigned depth)
{
	struct slist names = {0};
	struct dirent *de;
	DIR *d = fdopendir(dfd);
	int r;

	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	if ((r = slist_push(w->dirs, rel)) < 0)
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((r = slist_push(&names, de->d_name)) < 0)
			goto out;
	}
	qsort(names.v, names.n, sizeof names.v[0], cmp_str);
	for (size_t i = 0; i < names.n && r == 0; i++)
		r = walk_entry(w, dirfd(d), rel, names.v[i], depth);
out:
	slist_free(&names);
	closedir(d);
	return r;
}

int walk_tree(struct walk *w)
{
	int fd = fcntl(w->c->rootfd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	return walk_dir(w, fd, "", 0);
}

/* Adds one named file (--only, --child-files) through the same checks. */
static int add_named(struct ctx *c, struct tlist *t, const char *rel)
{
	struct walk w = {c, t, NULL, NULL, W_ATTACK};
	const char *base;
	struct xst st;
	char *dup;
	int pdir, r;

	if ((pdir = open_parent(c, rel, &base)) < 0) {
		errmsg("%s: %s", rel, pdir == -ENOTDIR ? "a directory on the way is a symlink or not a directory" : why(pdir));
		return pdir;
	}
	r = xstat(pdir, base, &st);
	close(pdir);
	if (r == 0)
		r = S_ISLNK(st.mode) ? -ELOOP : check_file(c, &st);
	if (r == 0 && (!strcmp(base, MARKER_NAME) || !strcmp(base, NOTE_NAME)))
		r = E_MARKER;
	if (r < 0) {
		errmsg("%s: %s", rel, why(r));
		return r;
	}
	if (!wanted(&w, base, &st)) /* size range, or already has the suffix */
		return 0;
	if (!(dup = strdup(rel)))
		return -ENOMEM;
	return tlist_push(t, dup, st.size, 0);
}

static int cmp_depth(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_size(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void apply_order(struct tlist *t, enum order ord)
{
	switch (ord) {
	case ORD_BFS:
		qsort(t->v, t->n, sizeof t->v[0], cmp_depth);
		break;
	case ORD_SIZE:
		qsort(t->v, t->n, sizeof t->v[0], cmp_size);
		break;
	case ORD_REVERSE:
		for (size_t i = 0; i < t->n / 2; i++) {
			struct target x = t->v[i];
			t->v[i] = t->v[t->n - 1 - i];
			t->v[t->n - 1 - i] = x;
		}
		break;
	case ORD_RANDOM:
		for (size_t i = t->n; i > 1; i--) {
			size_t k = (size_t)(prng_next() % i);
			struct target x = t->v[i - 1];
			t->v[i - 1] = t->v[k];
			t->v[k] = x;
		}
		break;
	default:
		break;
	}
}

/* ---- one file ------------------------------------------------------------ */

static void drop_note(int dfd)
{
	static const char note[] =
		NOTE_MAGIC "\n"
		"THIS IS A TEST.  The files in this directory were encrypted by bw-ransim,\n"
		"the bulwark ransomware emulator, to test `bulwark guard`.  Nothing was\n"
		"sent anywhere.  Restore:  bw-ransim decrypt ROOT --variant VARIANT\n";
	int fd = openat(dfd, NOTE_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0)
		return; /* EEXIST: another worker was first */
	if (write_all(fd, note, sizeof note - 1) < 0)
		errmsg("%s: %s", NOTE_NAME, strerror(errno));
	close(fd);
}

void count(struct ctx *c, int r, uint64_t bytes)
{
	if (r == 0) {
		__atomic_fetch_add(&c->cnt->files, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->cnt->bytes, bytes, __ATOMIC_RELAXED);
	} else if (r == R_SKIP) {
		__atomic_store_n(&c->cnt->skip, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&c->cnt->errors, 1, __ATOMIC_RELAXED);
	}
}

static int skipping(const struct ctx *c)
{
	return __atomic_load_n(&c->cnt->skip, __ATOMIC_RELAXED);
}

static int attack_one(struct ctx *c, struct target *t)
{
	const struct variant *v = c->o->variant;
	struct job j = {.c = c, .rel = t->rel, .pdir = -1, .fd = -1};
	struct xst st;
	int r;

	if (skipping(c))
		return R_SKIP;
	if ((j.pdir = open_parent(c, t->rel, &j.base)) < 0) {
		r = j.pdir;
		goto out;
	}
	if (c->o->note)
		drop_note(j.pdir);
	if (t->fd >= 0) {
		j.fd = t->fd;
		t->fd = -1;
		j.preopened = 1;
		r = xstat(j.fd, "", &st);
		if (r == 0)
			r = check_file(c, &st);
	} else {
		j.fd = open_target(c, j.pdir, j.base, v->oflags, &st);
		r = j.fd < 0 ? j.fd : 0;
	}
	if (r < 0)
		goto out;
	j.size = st.size;
	j.mode = st.mode;
	nonce_for(t->rel, j.nonce);
	if (j.size && (r = v->fn(&j)) == 0)
		log_file(c, j.t_first ? j.t_first : now_ns(), now_ns(), t->rel);
out:
	if (r < 0 && r != R_SKIP)
		errmsg("attack %s: %s: %s", v->name, t->rel, why(r));
	if (r == R_SKIP)
		errmsg("attack %s: %s: not supported on this filesystem or kernel: skipping (exit 77)",
		       v->name, t->rel);
	return job_end(&j, r);
}

static void delete_backups(struct ctx *c, struct tlist *bak)
{
	for (size_t i = 0; i < bak->n; i++) {
		const char *base;
		struct xst st;
		int64_t t0;
		int pdir = open_parent(c, bak->v[i].rel, &base), r;

		r = pdir < 0 ? pdir : xstat(pdir, base, &st);
		if (r == 0)
			r = S_ISLNK(st.mode) ? -ELOOP : check_file(c, &st);
		if (r == -EMLINK)
			r = 0; /* unlinking one name cannot hurt another */
		t0 = now_ns();
		if (r == 0 && unlinkat(pdir, base, 0) < 0)
			r = -errno;
		if (r == 0) {
			log_file(c, t0, now_ns(), bak->v[i].rel);
			__atomic_fetch_add(&c->cnt->deleted, 1, __ATOMIC_RELAXED);
		} else {
			errmsg("delete backup %s: %s", bak->v[i].rel, why(r));
			__atomic_fetch_add(&c->cnt->errors, 1, __ATOMIC_RELAXED);
		}
		if (pdir >= 0)
			close(pdir);
	}
}

/* ---- workers ------------------------------------------------------------- */

struct thr {
	struct ctx *c;
	struct tlist *t;
	size_t next;
};

static void *thread_main(void *arg)
{
	struct thr *th = arg;
	int first = 1;

	for (;;) {
		size_t i = __atomic_fetch_add(&th->next, 1, __ATOMIC_RELAXED);
		if (i >= th->t->n || skipping(th->c))
			break;
		if (!first && th->c->o->delay_ms)
			sleep_ms(th->c->o->delay_ms);
		first = 0;
		attack_one(th->c, &th->t->v[i]);
	}
	return NULL;
}

static void run_threads(struct ctx *c, struct tlist *t)
{
	struct thr th = {c, t, 0};
	pthread_t *tid = calloc(c->o->workers, sizeof *tid);
	unsigned started = 0;

	if (!tid) {
		errmsg("out of memory");
		count(c, -EIO, 0);
		return;
	}
	for (; started < c->o->workers; started++)
		if (pthread_create(&tid[started], NULL, thread_main, &th) != 0)
			break;
	if (!started)
		thread_main(&th);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
}

/* Waits for one child; a child killed by a signal counts as an error. */
static pid_t reap(struct ctx *c)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, 0)) < 0 && errno == EINTR)
		;
	if (pid > 0 && WIFSIGNALED(status)) {
		errmsg("worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
		__atomic_fetch_add(&c->cnt->errors, 1, __ATOMIC_RELAXED);
	} else if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == RC_SKIP) {
		__atomic_store_n(&c->cnt->skip, 1, __ATOMIC_RELAXED);
	} else if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) > RC_ERR) {
		/* 0 and 1: the child counted its own files and errors */
		errmsg("worker %ld exited with status %d", (long)pid, WEXITSTATUS(status));
		count(c, -EIO, 0);
	}
	return pid;
}

static void run_fork(struct ctx *c, struct tlist *t)
{
	unsigned running = 0;

	for (size_t i = 0; i < t->n && !skipping(c); i++) {
		pid_t pid;
		while (running >= c->o->workers && reap(c) > 0)
			running--;
		if (i && c->o->delay_ms)
			sleep_ms(c->o->delay_ms);
		if ((pid = fork()) < 0) {
			errmsg("fork: %s", strerror(errno));
			count(c, -EIO, 0);
			break;
		}
		if (pid == 0) {
			if (c->o->child_setsid)
				(void)setsid();
			int r = attack_one(c, &t->v[i]);
			_exit(r == R_SKIP ? RC_SKIP : r < 0 ? RC_ERR : RC_OK);
		}
		if (t->v[i].fd >= 0) { /* the child has it now */
			close(t->v[i].fd);
			t->v[i].fd = -1;
		}
		running++;
	}
	while (running && reap(c) > 0)
		running--;
}

static void pool_worker(struct ctx *c, struct tlist *t, int rfd)
{
	uint32_t idx;
	int first = 1;

	while (read(rfd, &idx, sizeof idx) == (ssize_t)sizeof idx) {
		if (idx >= t->n)
			break;
		if (!first && c->o->delay_ms)
			sleep_ms(c->o->delay_ms);
		first = 0;
		attack_one(c, &t->v[idx]);
	}
	_exit(skipping(c) ? RC_SKIP : RC_OK);
}

static void run_pool(struct ctx *c, struct tlist *t)
{
	unsigned running = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		errmsg("pipe: %s", strerror(errno));
		count(c, -EIO, 0);
		return;
	}
	for (unsigned w = 0; w < c->o->workers; w++) {
		pid_t pid = fork();
		if (pid == 0) {
			close(p[1]);
			if (c->o->child_setsid)
				(void)setsid();
			pool_worker(c, t, p[0]);
		}
		if (pid < 0) {
			errmsg("fork: %s", strerror(errno));
			break;
		}
		running++;
	}
	close(p[0]);
	for (uint32_t i = 0; running && i < t->n && !skipping(c); i++)
		if (write_all(p[1], &i, sizeof i) < 0)
			break; /* every worker is gone */
	close(p[1]);
	while (running && reap(c) > 0)
		running--;
}

struct argv_b {
	char *v[64];
	int n, nn;
	char num[16][24];
	char keyhex[65];
};

static void av_push(struct argv_b *a, const char *s)
{
	if (a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1) {
		a->v[a->n++] = (char *)s;
		a->v[a->n] = NULL;
	}
}

static void av_num(struct argv_b *a, uint64_t x)
{
	snprintf(a->num[a->nn], sizeof a->num[0], "%" PRIu64, x);
	av_push(a, a->num[a->nn++]);
}

/* The command line of a child bw-ransim that attacks files with the same
 * variant, key and resolved extension. */
static void child_argv(struct ctx *c, struct argv_b *a, int with_delay)
{
	const struct opts *o = c->o;

	memset(a, 0, sizeof *a);
	av_push(a, c->exe);
	av_push(a, "attack");
	av_push(a, c->real);
	av_push(a, "--variant");
	av_push(a, o->variant->name);
	bw_hex_encode(o->key, sizeof o->key, a->keyhex);
	av_push(a, "--key");
	av_push(a, a->keyhex);
	av_push(a, "--ext");
	av_push(a, o->ext[0] ? o->ext : "none");
	av_push(a, "--n");
	av_num(a, o->n);
	av_push(a, "--m");
	av_num(a, o->m);
	av_push(a, "--percent");
	av_num(a, o->percent);
	av_push(a, "--min-size");
	av_num(a, o->min_size);
	av_push(a, "--max-size");
	av_num(a, o->max_size);
	if (with_delay && o->delay_ms) {
		av_push(a, "--delay-ms");
		av_num(a, o->delay_ms);
	}
	if (c->logfd >= 0) {
		av_push(a, "--log");
		av_push(a, c->logpath);
	}
	if (o->note)
		av_push(a, "--note");
	av_push(a, "--internal-child");
}

struct relay {
	pid_t pid;
	int rep;
};

static void relay_collect(struct ctx *c, struct relay *rl)
{
	char buf[128] = {0};
	uint64_t f = 0, b = 0, e = 0;
	ssize_t n = read(rl->rep, buf, sizeof buf - 1);

	if (n > 0 && sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64, &f, &b, &e) == 3) {
		__atomic_fetch_add(&c->cnt->files, f, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->cnt->bytes, b, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c->cnt->errors, e, __ATOMIC_RELAXED);
	} else if (!skipping(c)) {
		errmsg("worker %ld ended without a report: its files may not be done", (long)rl->pid);
		count(c, -EIO, 0);
	}
	close(rl->rep);
	rl->pid = 0;
}

static pid_t relay_start(struct ctx *c, struct tlist *t, size_t from, size_t to, int *rep)
{
	struct argv_b a;
	int lp[2], rp[2];
	pid_t pid;

	if (pipe2(lp, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(rp, O_CLOEXEC) < 0) {
		close(lp[0]);
		close(lp[1]);
		return -1;
	}
	child_argv(c, &a, 1);
	av_push(&a, "--child-files");
	av_num(&a, (uint64_t)lp[0]);
	av_push(&a, "--child-report");
	av_num(&a, (uint64_t)rp[1]);
	if ((pid = fork()) == 0) {
		fcntl(lp[0], F_SETFD, 0);
		fcntl(rp[1], F_SETFD, 0);
		execv("/proc/self/exe", a.v);
		errmsg("exec /proc/self/exe: %s", strerror(errno));
		_exit(127);
	}
	close(lp[0]);
	close(rp[1]);
	for (size_t i = from; pid > 0 && i < to; i++)
		if (write_all(lp[1], t->v[i].rel, strlen(t->v[i].rel) + 1) < 0)
			break;
	close(lp[1]);
	if (pid < 0)
		close(rp[0]);
	*rep = rp[0];
	return pid;
}

/* Each batch of files goes to a fresh exec of this program. */
static void run_execrelay(struct ctx *c, struct tlist *t)
{
	unsigned nw = c->o->workers;
	struct relay *rl = calloc(nw, sizeof *rl);
	size_t from = 0;
	unsigned running = 0;

	if (!rl) {
		count(c, -EIO, 0);
		return;
	}
	while ((from < t->n && !skipping(c)) || running) {
		if (from < t->n && running < nw && !skipping(c)) {
			size_t to = from + c->o->batch < t->n ? from + c->o->batch : t->n;
			unsigned k = 0;
			int rep;
			pid_t pid;
			while (rl[k].pid)
				k++;
			if (from && c->o->delay_ms)
				sleep_ms(c->o->delay_ms);
			if ((pid = relay_start(c, t, from, to, &rep)) < 0) {
				errmsg("fork: %s", strerror(errno));
				count(c, -EIO, 0);
				from = t->n;
				continue;
			}
			rl[k] = (struct relay){pid, rep};
			running++;
			from = to;
			continue;
		}
		pid_t pid = reap(c);
		if (pid <= 0)
			break;
		for (unsigned k = 0; k < nw; k++)
			if (rl[k].pid == pid) {
				relay_collect(c, &rl[k]);
				running--;
			}
	}
	free(rl);
}

static void run_seq(struct ctx *c, struct tlist *t)
{
	for (size_t i = 0; i < t->n && !skipping(c); i++) {
		if (i && c->o->delay_ms)
			sleep_ms(c->o->delay_ms);
		attack_one(c, &t->v[i]);
	}
}

/* ---- --script: a /bin/sh parent that runs one bw-ransim per file --------- */

static int sq(struct bw_buf *b, const char *s)
{
	int r = bw_buf_put_u8(b, '\'');

	for (; *s && r == 0; s++)
		r = *s == '\'' ? bw_buf_append(b, "'\\''", 4) : bw_buf_put_u8(b, (uint8_t)*s);
	return r ? r : bw_buf_put_u8(b, '\'');
}

static int script_text(struct ctx *c, struct tlist *t, const char *dir, struct bw_buf *b)
{
	struct argv_b a;
	int r;

	child_argv(c, &a, 0);
	r = bw_buf_printf(b, "#!/bin/sh\n# Generated by bw-ransim --script: one encryptor process per file.\n"
	                     "# It deletes itself when it ends.\nd=");
	if (!r)
		r = sq(b, dir);
	if (!r)
		r = bw_buf_printf(b, "\ntrap 'rm -f \"$d/run.sh\"; rmdir \"$d\"' EXIT\n"
		                     "trap 'exit 130' INT\ntrap 'exit 143' TERM\nn=0\nrc=0\nrun() {\n\t");
	for (int i = 0; i < a.n && !r; i++)
		if (!(r = sq(b, a.v[i])))
			r = bw_buf_put_u8(b, ' ');
	if (!r)
		r = bw_buf_printf(b, "--only \"$1\"\n\ts=$?\n\tcase $s in\n\t0) n=$((n + 1)) ;;\n"
		                     "\t77) exit 77 ;;\n\t*) rc=1 ;;\n\tesac\n}\n");
	for (size_t i = 0; i < t->n && !r; i++) {
		if (i && c->o->delay_ms)
			r = bw_buf_printf(b, "sleep %" PRIu64 ".%03" PRIu64 "\n", c->o->delay_ms / 1000,
			                  c->o->delay_ms % 1000);
		if (!r)
			r = bw_buf_printf(b, "run ");
		if (!r)
			r = sq(b, t->v[i].rel);
		if (!r)
			r = bw_buf_put_u8(b, '\n');
	}
	if (!r && !c->o->quiet)
		r = bw_buf_printf(b, "echo \"bw-ransim: attack %s (script): $n files\"\n", c->o->variant->name);
	if (!r)
		r = bw_buf_printf(b, "exit $rc\n");
	return r;
}

/* Replaces this process by /bin/sh running the generated script; returns
 * only on failure. */
static int run_script(struct ctx *c, struct tlist *t)
{
	char dir[] = "/tmp/bw-ransim-sh.XXXXXX", path[64], real[PATH_MAX];
	size_t rl = strlen(c->real);
	struct bw_buf b;
	int fd, r;

	if (!mkdtemp(dir)) {
		errmsg("mkdtemp %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!realpath(dir, real) || (!strncmp(real, c->real, rl) && (real[rl] == '/' || !real[rl]))) {
		errmsg("%s: the script directory would be inside ROOT: refusing", dir);
		rmdir(dir);
		return -1;
	}
	snprintf(path, sizeof path, "%s/run.sh", dir);
	bw_buf_init(&b, (size_t)256 << 20);
	r = script_text(c, t, dir, &b);
	fd = r ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (fd < 0 || write_all(fd, b.data, b.len) < 0 || close(fd) < 0) {
		errmsg("%s: %s", path, r ? bw_strerror(r) : strerror(errno));
		bw_buf_release(&b);
		unlink(path);
		rmdir(dir);
		return -1;
	}
	bw_buf_release(&b);
	fflush(NULL);
	execl("/bin/sh", "sh", path, (char *)NULL);
	errmsg("exec /bin/sh: %s", strerror(errno));
	unlink(path);
	rmdir(dir);
	return -1;
}

/* ---- --preopen ----------------------------------------------------------- */

static int preopen_all(struct ctx *c, struct tlist *t)
{
	struct rlimit rl;
	sigset_t set;
	size_t ok = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < t->n; i++) {
		const char *base;
		struct xst st;
		int pdir = open_parent(c, t->v[i].rel, &base), fd;
		fd = pdir < 0 ? pdir : open_target(c, pdir, base, O_RDWR, &st);
		if (pdir >= 0)
			close(pdir);
		if (fd < 0) {
			errmsg("preopen %s: %s", t->v[i].rel, why(fd));
			continue;
		}
		t->v[i].fd = fd;
		ok++;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (!c->o->quiet)
		errmsg("preopened %zu files; waiting for SIGUSR1 to pid %ld%s", ok, (long)getpid(),
		       c->o->preopen_wait_ms ? " (or the timeout)" : "");
	if (c->o->preopen_wait_ms) {
		struct timespec ts = {(time_t)(c->o->preopen_wait_ms / 1000),
		                      (long)(c->o->preopen_wait_ms % 1000) * 1000000L};
		while (sigtimedwait(&set, NULL, &ts) < 0 && errno == EINTR)
			;
	} else {
		while (sigwaitinfo(&set, NULL) < 0 && errno == EINTR)
			;
	}
	return 0;
}

/* ---- attack -------------------------------------------------------------- */

static int read_child_files(struct ctx *c, struct tlist *t, int fd)
{
	struct bw_buf b;
	uint8_t tmp[65536];
	ssize_t n;
	int r = 0;

	bw_buf_init(&b, (size_t)256 << 20);
	while ((n = read(fd, tmp, sizeof tmp)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (r = bw_buf_append(&b, tmp, (size_t)n)) < 0) {
			r = -EIO;
			break;
		}
	}
	close(fd);
	for (size_t i = 0, s = 0; r == 0 && i < b.len; i++)
		if (b.data[i] == 0) {
			if ((r = add_named(c, t, (const char *)b.data + s)) < 0 && r != -ENOMEM) {
				count(c, -EIO, 0);
				r = 0;
			}
			s = i + 1;
		}
	bw_buf_release(&b);
	return r;
}

static int collect(struct ctx *c, struct tlist *t, struct tlist *bak, struct slist *dirs)
{
	const struct opts *o = c->o;
	struct walk w = {c, t, o->delbak ? bak : NULL, dirs, W_ATTACK};
	int r;

	if (o->child_files >= 0)
		return read_child_files(c, t, o->child_files);
	if (o->only && (r = add_named(c, t, o->only)) < 0 && r != -ENOMEM) {
		count(c, -EIO, 0);
		return 0;
	}
	if (o->only)
		return r;
	if ((r = walk_tree(&w)) < 0)
		errmsg("%s: walk: %s", c->real, why(r));
	return r;
}

static int iouring_probe(void)
{
	struct uring u;
	int r = uring_init(&u);

	if (r == -ENOSYS || r == -EPERM) {
		errmsg("io_uring is not available here (io_uring_setup: %s; see "
		       "/proc/sys/kernel/io_uring_disabled or the seccomp policy): skipping",
		       strerror(-r));
		return RC_SKIP;
	}
	if (r < 0) {
		errmsg("io_uring_setup: %s", strerror(-r));
		return RC_ERR;
	}
	uring_free(&u);
	return RC_OK;
}

void summary(struct ctx *c, const char *what)
{
	const struct counters *k = c->cnt;
	const struct opts *o = c->o;

	if (o->internal && o->child_report >= 0) {
		char line[96];
		int n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", k->files,
		                 k->bytes, k->errors);
		if (write_all(o->child_report, line, (size_t)n) < 0)
			errmsg("child report: %s", strerror(errno));
	}
	if (o->quiet || o->internal)
		return;
	printf("bw-ransim: %s %s: %" PRIu64 " files, %" PRIu64 " bytes", what, o->variant->name,
	       k->files, k->bytes);
	if (k->deleted)
		printf(", %" PRIu64 " backups deleted", k->deleted);
	if (k->errors)
		printf(", %" PRIu64 " errors", k->errors);
	if (o->variant->renames && o->cmd == CMD_ATTACK)
		printf(", ext %s", o->ext);
	printf("\n");
	fflush(stdout);
}

static int cmd_attack(struct ctx *c)
{
	struct opts *o = c->o;
	struct tlist t = {0}, bak = {0};
	struct slist dirs = {0};
	int rc = RC_ERR;

	if (o->variant->fn == v_iouring && (rc = iouring_probe()) != RC_OK)
		return rc;
	rc = RC_ERR;
	if (o->log && open_log(c, o->log, !o->internal) < 0)
		return RC_ERR;
	if (!o->internal && c->logfd >= 0) {
		char line[40];
		int n = snprintf(line, sizeof line, "start %" PRId64 "\n", now_ns());
		if (write_all(c->logfd, line, (size_t)n) < 0)
			errmsg("log: %s", strerror(errno));
	}
	if (collect(c, &t, &bak, &dirs) < 0)
		goto out;
	if (o->delbak)
		delete_backups(c, &bak);
	apply_order(&t, o->order);
	for (size_t i = o->max_files; i < t.n; i++)
		free(t.v[i].rel);
	if (o->max_files < t.n)
		t.n = (size_t)o->max_files;
	if (o->script) {
		run_script(c, &t);
		goto out; /* only reached when the exec failed */
	}
	if (o->preopen)
		preopen_all(c, &t);
	switch (o->mode) {
	case M_FORK: run_fork(c, &t); break;
	case M_THREADS: run_threads(c, &t); break;
	case M_POOL: run_pool(c, &t); break;
	case M_EXECRELAY: run_execrelay(c, &t); break;
	default: run_seq(c, &t); break;
	}
	if (o->note && !o->internal)
		for (size_t i = 0; i < dirs.n; i++) {
			int dfd = open_dir(c, dirs.v[i]);
			if (dfd >= 0) {
				drop_note(dfd);
				close(dfd);
			}
		}
	summary(c, "attack");
	rc = c->cnt->skip ? RC_SKIP : c->cnt->errors ? RC_ERR : RC_OK;
out:
	tlist_free(&t);
	tlist_free(&bak);
	slist_free(&dirs);
	return rc;
}

/* ---- init ---------------------------------------------------------------- */

static int cmd_init(struct ctx *c)
{
	char text[PATH_MAX + 256];
	int fd, n, r = 0;

	n = snprintf(text, sizeof text, "%s\n%s\n", MARKER_MAGIC, c->real);
	fd = openat(c->rootfd, MARKER_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || (r = write_all(fd, text, (size_t)n)) < 0 || fsync(fd) < 0) {
		errmsg("%s/%s: %s", c->real, MARKER_NAME, strerror(r ? -r : errno));
		if (fd >= 0)
			close(fd);
		return RC_ERR;
	}
	close(fd);
	if (!c->o->quiet)
		printf("bw-ransim: marked %s as a scratch tree: attack and decrypt may now damage every file in it\n",
		       c->real);
	return RC_OK;
}

/* ---- command line -------------------------------------------------------- */

static const char *const help_text[] = {
	"NAME",
	"    bw-ransim - a safe ransomware emulator for testing `bulwark guard`",
	"",
	"SYNOPSIS",
	"    bw-ransim init DIR",
	"    bw-ransim attack ROOT --variant NAME [--ext ...] [--note]",
	"                     [--delete-backups-first] [--order ...] [--seed N]",
	"                     [--delay-ms N] [--workers N] [--mode ...] [--batch N]",
	"                     [--max-files N] [--min-size S] [--max-size S]",
	"                     [--preopen [--preopen-wait-ms N]] [--script] [--only REL]",
	"                     [--n N --m M] [--percent P] [--key HEX] [--log FILE]",
	"                     [--quiet]",
	"    bw-ransim decrypt ROOT [--variant NAME] [--key HEX]",
	"                      [--ext fixed|.SUFFIX] [--n N --m M --percent P]",
	"                      [--from-log FILE] [--quiet]",
	"    bw-ransim --help",
	"",
	"DESCRIPTION",
	"    attack damages the files below ROOT the way ransomware does, so that the",
	"    guard's detection, freeze and rollback can be tested and timed; decrypt",
	"    undoes the reversible variants.  Meant for scratch trees made with",
	"    tests/guard/mkcorpus.py.",
	"",
	"SAFETY",
	"    - init DIR writes DIR/.bw-ransim-marker: the line",
	"        " MARKER_MAGIC,
	"      then realpath(DIR) on a line of its own.  attack and decrypt refuse to",
	"      run unless ROOT/.bw-ransim-marker is a regular file of exactly that form",
	"      naming realpath(ROOT) (a marker copied from another tree is refused).",
	"      ROOT must be a directory; /, $HOME and the top-level system directories",
	"      (/etc, /usr, /home, /tmp, ...) are refused even with a marker.",
	"    - Every file is reached with openat/statx relative to directory fds opened",
	"      one component at a time from ROOT, with O_NOFOLLOW: symlinks are never",
	"      followed, other mounts (st_dev or mount id differs) are never entered,",
	"      files with more than one hard link are skipped, the marker is never",
	"      touched.  Only regular files are opened.",
	"    - No network, no persistence, no privilege changes, no signals to other",
	"      processes.  Helpers are its own children only (fork, exec of",
	"      /proc/self/exe, or /bin/sh running a script it wrote in a mkdtemp",
	"      directory under /tmp, outside ROOT, which deletes itself).",
	"    - --log must be outside ROOT.",
	"",
	"THE TRANSFORM",
	"    ChaCha20 keystream XOR (libsodium crypto_stream_chacha20_xor_ic) at the",
	"    byte's file offset; key from --key (64 hex digits; default the public",
	"    test key \"" DEFAULT_KEY "\", i.e. hex",
	"    62756c7761726b2d72616e73696d2d66697865642d746573742d6b65792d3332);",
	"    nonce = the first 8 bytes of BLAKE2b-128 (crypto_generichash) of the path",
	"    relative to ROOT before any rename.  Same key, same result: decrypt is",
	"    the same XOR.",
	"",
	"VARIANTS (--variant NAME)",
	"    name           decrypt  what it does to each file",
	NULL, /* the table, from variants[] */
	"",
	"ATTACK OPTIONS",
	"    --ext random|fixed|none|.SUFFIX",
	"        the suffix added by newdelete, renamethenenc and encthenrename",
	"        (default fixed = " FIXED_EXT "; random = '.' and 5 random lowercase",
	"        letters per run, printed in the summary; none is refused for those",
	"        three).  Files that already end in it are skipped.",
	"    --note   drop " NOTE_NAME " in every directory visited",
	"    --delete-backups-first",
	"        first unlink *.bak *.backup *.old *.vhd *.vhdx *.wbcat (any case)",
	"        anywhere in the tree (logged like damaged files; not reversible)",
	"    --order dfs|bfs|random|size|reverse",
	"        dfs (default; names sorted), bfs (shallow first), random, size",
	"        (smallest first), reverse (of dfs)",
	"    --seed N        repeatable random order and random extension",
	"    --delay-ms N    sleep N ms between files (per worker; slow encryption)",
	"    --workers N     parallel workers (default 1; >1 without --mode: threads)",
	"    --mode fork|threads|pool|execrelay",
	"        fork: one forked child per file, N at a time; threads: N pthreads",
	"        taking files from a shared list; pool: N forked workers fed file",
	"        indices through a pipe; execrelay: per batch of --batch N files",
	"        (default 16) a fresh exec of /proc/self/exe reads its file list from",
	"        a pipe, N at a time, so the writer is a freshly exec'd child",
	"    --max-files N   stop after N files (after --order)",
	"    --min-size SIZE, --max-size SIZE",
	"        only files in that range (suffix k, M, G; default 1 byte .. any)",
	"    --preopen       open every target O_RDWR first, wait for SIGUSR1 (or",
	"                    --preopen-wait-ms N), then damage through those fds",
	"    --script        the attacker is /bin/sh running a generated script that",
	"                    runs `bw-ransim attack ROOT --variant X --only REL` once per",
	"                    file (killing one child leaves the script going)",
	"    --only REL      attack just the file REL (relative to ROOT)",
	"    --n N --m M     nofm: N of every M 64 KiB blocks (default 1, 4)",
	"    --percent P     percent: first P% (default 4)",
	"    --key HEX       32-byte key as 64 hex digits",
	"    --log FILE      per-file log (outside ROOT), see LOG",
	"    --quiet         no summary line (nor the --preopen notice on stderr)",
	"    --batch N       files per exec for --mode execrelay (default 16)",
	"    --setsid        with --mode fork or pool: every forked helper calls",
	"                    setsid() first, so each is a session of its own",
	"    Internal, for its own children: --internal-child, --child-files FD,",
	"    --child-report FD.",
	"",
	"NOTES",
	"    Targets are collected (and filtered by --min-size/--max-size, the",
	"    suffix, --order and --max-files) before the first file is touched.",
	"    --preopen prints \"preopened N files; waiting for SIGUSR1 to pid P\" on",
	"    stderr once every descriptor is open.  With --script, notes go only to",
	"    the directories of the files attacked, and a script killed by SIGKILL",
	"    leaves its /tmp/bw-ransim-sh.* directory behind.  A variant that needs",
	"    the whole file in memory refuses files over 1 GiB (inplace and the",
	"    partial variants work in 1 MiB chunks instead).",
	"",
	"DECRYPT",
	"    Give decrypt the same --variant, --key, --ext (the actual suffix, e.g.",
	"    --ext .qwert after --ext random) and --n/--m/--percent as the attack.",
	"    Without --from-log it transforms every regular file under ROOT (for",
	"    newdelete, renamethenenc and encthenrename: every file ending in the",
	"    suffix, renamed back), so it is only right after an attack on the whole",
	"    tree; with --from-log FILE it takes exactly the files the attack's log",
	"    lists.  It also removes the ransom notes.  Running it twice re-encrypts.",
	"",
	"LOG",
	"    --log FILE is truncated, then gets \"start <ns>\", then one line per",
	"    damaged file, written with a single write(2) when the file is done (it",
	"    survives SIGKILL):",
	"        <ns before the first damaging syscall> <ns when done> <relative path>",
	"    (CLOCK_REALTIME nanoseconds; \\ and newline in paths escaped as \\\\ and",
	"    \\n).  A file being damaged when the process was killed has no line.",
	"",
	"EXIT STATUS",
	"    0 every file done, 1 an error (some files may be done), 2 usage,",
	"    77 the feature is not available here (io_uring, O_DIRECT, hole punching).",
	"    A summary line \"bw-ransim: attack VARIANT: N files, B bytes\" goes to",
	"    stdout unless --quiet (bytes: the sizes of the files damaged).",
	"",
	"EXAMPLES",
	"    python3 tests/guard/mkcorpus.py /tmp/t/tree --manifest /tmp/t/manifest",
	"    bw-ransim init /tmp/t/tree",
	"    bw-ransim attack /tmp/t/tree --variant renamethenenc --log /tmp/t/log",
	"    bw-ransim decrypt /tmp/t/tree --variant renamethenenc",
	"    (cd /tmp/t/tree && sha256sum --quiet -c /tmp/t/manifest)",
};

static void print_help(void)
{
	for (size_t i = 0; i < sizeof help_text / sizeof help_text[0]; i++) {
		if (help_text[i]) {
			printf("%s\n", help_text[i]);
			continue;
		}
		for (size_t k = 0; k < nvariants; k++)
			printf("    %-14s %-8s %s\n", variants[k].name,
			       variants[k].cls == VC_WIPE ? "no" : "yes", variants[k].help);
	}
}

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	errmsg("%s (see bw-ransim --help)", msg);
	return RC_USAGE;
}

enum {
	O_VARIANT = 256, O_KEY, O_EXT, O_NOTE, O_DELBAK, O_ORDER, O_DELAY, O_WORKERS, O_MODE,
	O_BATCH, O_MAXFILES, O_MINSIZE, O_MAXSIZE, O_PREOPEN, O_PREOPEN_WAIT, O_SCRIPT, O_ONLY,
	O_LOG, O_QUIET, O_N, O_M, O_PERCENT, O_SEED, O_FROMLOG, O_HELP, O_INTERNAL, O_CHILD_FILES,
	O_CHILD_REPORT, O_SETSID,
};

/* The option table: name, argument, and whether decrypt takes it. */
static const struct option long_opts[] = {
	{"variant", 1, NULL, O_VARIANT},       {"key", 1, NULL, O_KEY},
	{"ext", 1, NULL, O_EXT},               {"note", 0, NULL, O_NOTE},
	{"delete-backups-first", 0, NULL, O_DELBAK}, {"order", 1, NULL, O_ORDER},
	{"delay-ms", 1, NULL, O_DELAY},        {"workers", 1, NULL, O_WORKERS},
	{"mode", 1, NULL, O_MODE},             {"batch", 1, NULL, O_BATCH},
	{"max-files", 1, NULL, O_MAXFILES},    {"min-size", 1, NULL, O_MINSIZE},
	{"max-size", 1, NULL, O_MAXSIZE},      {"preopen", 0, NULL, O_PREOPEN},
	{"preopen-wait-ms", 1, NULL, O_PREOPEN_WAIT}, {"script", 0, NULL, O_SCRIPT},
	{"setsid", 0, NULL, O_SETSID},
	{"only", 1, NULL, O_ONLY},             {"log", 1, NULL, O_LOG},
	{"quiet", 0, NULL, O_QUIET},           {"n", 1, NULL, O_N},
	{"m", 1, NULL, O_M},                   {"percent", 1, NULL, O_PERCENT},
	{"seed", 1, NULL, O_SEED},             {"from-log", 1, NULL, O_FROMLOG},
	{"help", 0, NULL, O_HELP},             {"internal-child", 0, NULL, O_INTERNAL},
	{"child-files", 1, NULL, O_CHILD_FILES}, {"child-report", 1, NULL, O_CHILD_REPORT},
	{NULL, 0, NULL, 0},
};
static const int decrypt_opts[] = {O_VARIANT, O_KEY, O_EXT, O_N, O_M, O_PERCENT, O_FROMLOG, O_QUIET, O_HELP};

static int set_ext(struct opts *o, const char *s)
{
	size_t n = strlen(s);

	o->ext_random = 0;
	if (!strcmp(s, "fixed"))
		snprintf(o->ext, sizeof o->ext, "%s", FIXED_EXT);
	else if (!strcmp(s, "none"))
		o->ext[0] = 0;
	else if (!strcmp(s, "random"))
		o->ext_random = 1;
	else if (s[0] == '.' && n >= 2 && n < sizeof o->ext && !strchr(s, '/'))
		snprintf(o->ext, sizeof o->ext, "%s", s);
	else
		return -1;
	return 0;
}

static int set_enum(const char *s, const char *const *names, int n, int *out)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

static int num_opt(const char *name, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (parse_u64(s, out) < 0 || *out < lo || *out > hi)
		return usage("--%s %s: expected a number from %" PRIu64 " to %" PRIu64, name, s, lo, hi);
	return 0;
}

static int parse_one(struct opts *o, int c, const char *arg)
{
	static const char *const orders[] = {"dfs", "bfs", "random", "size", "reverse"};
	static const char *const modes[] = {"seq", "fork", "threads", "pool", "execrelay"};
	uint64_t v = 0;
	int e = 0, r = 0;

	switch (c) {
	case O_VARIANT:
		if (!(o->variant = find_variant(arg)))
			return usage("--variant %s: no such variant", arg);
		break;
	case O_KEY:
		if (strlen(arg) != 64 || bw_hex_decode(arg, o->key, sizeof o->key) < 0)
			return usage("--key: expected 64 hex digits");
		break;
	case O_EXT:
		if (set_ext(o, arg) < 0)
			return usage("--ext %s: expected random, fixed, none or .SUFFIX", arg);
		break;
	case O_ORDER:
		if (set_enum(arg, orders, 5, &e) < 0)
			return usage("--order %s: expected dfs, bfs, random, size or reverse", arg);
		o->order = (enum order)e;
		break;
	case O_MODE:
		if (set_enum(arg, modes, 5, &e) < 0)
			return usage("--mode %s: expected fork, threads, pool or execrelay", arg);
		o->mode = (enum mode)e;
		o->mode_set = 1;
		break;
	case O_NOTE: o->note = 1; break;
	case O_DELBAK: o->delbak = 1; break;
	case O_PREOPEN: o->preopen = 1; break;
	case O_SETSID: o->child_setsid = 1; break;
	case O_SCRIPT: o->script = 1; break;
	case O_QUIET: o->quiet = 1; break;
	case O_INTERNAL: o->internal = 1; break;
	case O_ONLY: o->only = arg; break;
	case O_LOG: o->log = arg; break;
	case O_FROMLOG: o->from_log = arg; break;
	case O_DELAY: r = num_opt("delay-ms", arg, 0, 3600000, &o->delay_ms); break;
	case O_PREOPEN_WAIT: r = num_opt("preopen-wait-ms", arg, 0, 86400000, &o->preopen_wait_ms); break;
	case O_MAXFILES: r = num_opt("max-files", arg, 0, UINT64_MAX, &o->max_files); break;
	case O_MINSIZE: r = num_opt("min-size", arg, 0, UINT64_MAX, &o->min_size); break;
	case O_MAXSIZE: r = num_opt("max-size", arg, 0, UINT64_MAX, &o->max_size); break;
	case O_SEED: r = num_opt("seed", arg, 0, UINT64_MAX, &o->seed); prng_state = o->seed; break;
	case O_WORKERS: r = num_opt("workers", arg, 1, 256, &v); o->workers = (unsigned)v; break;
	case O_BATCH: r = num_opt("batch", arg, 1, 100000, &v); o->batch = (unsigned)v; break;
	case O_N: r = num_opt("n", arg, 1, 1024, &v); o->n = (unsigned)v; break;
	case O_M: r = num_opt("m", arg, 1, 1024, &v); o->m = (unsigned)v; break;
	case O_PERCENT: r = num_opt("percent", arg, 1, 100, &v); o->percent = (unsigned)v; break;
	case O_CHILD_FILES: r = num_opt("child-files", arg, 3, 1 << 20, &v); o->child_files = (int)v; break;
	case O_CHILD_REPORT: r = num_opt("child-report", arg, 3, 1 << 20, &v); o->child_report = (int)v; break;
	default: return usage("unknown option");
	}
	return r;
}

static int check_attack_opts(struct opts *o)
{
	const struct variant *v = o->variant;

	if (!v)
		return usage("attack needs --variant NAME");
	if (v->renames && !o->ext[0] && !o->ext_random)
		return usage("--ext none makes no sense with --variant %s", v->name);
	if (o->n > o->m)
		return usage("--n %u is larger than --m %u", o->n, o->m);
	if (o->min_size > o->max_size)
		return usage("--min-size is larger than --max-size");
	if (o->workers > 1 && !o->mode_set)
		o->mode = M_THREADS;
	if (o->script && (o->mode_set || o->workers > 1 || o->preopen || o->only))
		return usage("--script runs one child per file: no --mode, --workers, --preopen or --only");
	if (o->preopen && o->mode == M_EXECRELAY)
		return usage("--preopen cannot hand its descriptors to --mode execrelay");
	if (o->internal && (o->script || o->preopen || o->mode_set || o->delbak))
		return usage("--internal-child is for bw-ransim's own children");
	if ((o->child_files >= 0 || o->child_report >= 0) && !o->internal)
		return usage("--child-files and --child-report are internal");
	if (o->only && o->child_files >= 0)
		return usage("--only and --child-files exclude each other");
	if (o->ext_random) {
		o->ext[0] = '.';
		for (int i = 1; i <= 5; i++)
			o->ext[i] = (char)('a' + prng_next() % 26);
		o->ext[6] = 0;
	}
	return 0;
}

static int check_decrypt_opts(struct opts *o)
{
	if (!o->variant)
		o->variant = find_variant("inplace");
	if (o->variant->cls == VC_WIPE)
		return usage("--variant %s wipes data: it cannot be reversed", o->variant->name);
	if (o->ext_random)
		return usage("decrypt needs the actual suffix: --ext .SUFFIX as printed by the attack");
	if (o->variant->renames && !o->ext[0])
		return usage("--ext none makes no sense with --variant %s", o->variant->name);
	if (o->n > o->m)
		return usage("--n %u is larger than --m %u", o->n, o->m);
	return 0;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	int c, r;

	while ((c = getopt_long(argc, argv, "hq", long_opts, NULL)) != -1) {
		int ok = o->cmd == CMD_ATTACK;
		if (c == 'h')
			c = O_HELP;
		if (c == 'q')
			c = O_QUIET;
		if (c == '?')
			return RC_USAGE;
		if (c == O_HELP) {
			print_help();
			exit(RC_OK);
		}
		for (size_t i = 0; !ok && i < sizeof decrypt_opts / sizeof decrypt_opts[0]; i++)
			ok = c == decrypt_opts[i] && (o->cmd == CMD_DECRYPT || c == O_QUIET);
		if (!ok)
			return usage("%s does not take that option", o->cmd == CMD_INIT ? "init" : "decrypt");
		if ((r = parse_one(o, c, optarg)) != 0)
			return r;
	}
	if (optind != argc - 1)
		return usage("expected exactly one directory");
	o->root = argv[optind];
	if (o->cmd == CMD_ATTACK)
		return check_attack_opts(o);
	if (o->cmd == CMD_DECRYPT)
		return check_decrypt_opts(o);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const cmds[] = {"init", "attack", "decrypt"};
	struct opts o = {
		.workers = 1, .batch = 16, .n = 1, .m = 4, .percent = 4, .min_size = 1,
		.max_size = UINT64_MAX, .max_files = UINT64_MAX, .child_files = -1, .child_report = -1,
	};
	struct ctx c = {.o = &o, .rootfd = -1, .logfd = -1};
	int cmd = 0, rc;
	ssize_t n;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_help();
		return argc < 2 ? RC_USAGE : RC_OK;
	}
	if (set_enum(argv[1], cmds, 3, &cmd) < 0)
		return usage("%s: unknown command: expected init, attack or decrypt", argv[1]);
	o.cmd = (enum cmd)cmd;
	if (sodium_init() < 0) {
		errmsg("libsodium failed to initialise");
		return RC_ERR;
	}
	memcpy(o.key, DEFAULT_KEY, sizeof o.key);
	snprintf(o.ext, sizeof o.ext, "%s", FIXED_EXT);
	randombytes_buf(&prng_state, sizeof prng_state);
	if ((rc = parse_args(&o, argc - 1, argv + 1)) != 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	if (o.preopen) { /* blocked before anyone can be told to send it */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	if (open_root(&c, o.root, o.cmd != CMD_INIT) < 0)
		return RC_ERR;
	if ((n = readlink("/proc/self/exe", c.exe, sizeof c.exe - 1)) < 0) {
		errmsg("/proc/self/exe: %s", strerror(errno));
		return RC_ERR;
	}
	c.exe[n] = 0;
	c.cnt = mmap(NULL, sizeof *c.cnt, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.cnt == MAP_FAILED) {
		errmsg("mmap: %s", strerror(errno));
		return RC_ERR;
	}
	memset(c.cnt, 0, sizeof *c.cnt);
	rc = o.cmd == CMD_INIT ? cmd_init(&c) : o.cmd == CMD_ATTACK ? cmd_attack(&c) : cmd_decrypt(&c);
	munmap(c.cnt, sizeof *c.cnt);
	if (c.logfd >= 0)
		close(c.logfd);
	close(c.rootfd);
	return rc;
}

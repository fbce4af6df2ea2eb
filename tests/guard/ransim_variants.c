/* bw-ransim: the transforms and the damage variants (see ransim.h). */
#include "ransim.h"

static uint64_t tmp_seq;

/* ---- transforms shared by the variants and decrypt ----------------------- */

/* The next encrypted byte range [*s, *e) at or after pos, for a class. */
static int next_range(const struct opts *o, enum vclass cls, uint64_t size, uint64_t pos,
                      uint64_t *s, uint64_t *e)
{
	uint64_t lim, b;

	if (pos >= size)
		return 0;
	switch (cls) {
	case VC_HEADER:
	case VC_PERCENT:
		lim = HEADER_LEN;
		if (cls == VC_PERCENT) {
			uint64_t p = size / 100 * o->percent + size % 100 * o->percent / 100;
			if (p > lim)
				lim = p;
		}
		if (lim > size)
			lim = size;
		if (pos >= lim)
			return 0;
		*s = pos;
		*e = lim;
		return 1;
	case VC_STRIPES: /* bytes 0-15 of every 32 */
		b = pos - pos % 32;
		*s = pos % 32 < 16 ? pos : b + 32;
		*e = pos % 32 < 16 ? b + 16 : b + 48;
		break;
	case VC_NOFM: /* blocks 0..n-1 of every m */
		b = pos / NOFM_BLOCK;
		if (b % o->m < o->n) {
			*s = pos;
		} else {
			b = (b / o->m + 1) * o->m;
			*s = b * NOFM_BLOCK;
		}
		*e = (b + 1) * NOFM_BLOCK;
		break;
	default:
		*s = pos;
		*e = size;
		return 1;
	}
	if (*s >= size)
		return 0;
	if (*e > size)
		*e = size;
	return 1;
}

/* Transforms the ranges of a class in place through fd, a chunk at a time:
 * read the chunk, XOR the ranges in it, write the whole chunk back. */
int xform_chunks(struct job *j, int fd, enum vclass cls)
{
	const struct opts *o = j->c->o;
	uint64_t off = 0, s, e;
	uint8_t *buf = malloc(CHUNK);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (next_range(o, cls, j->size, off, &s, &e)) {
		uint64_t coff = s - s % CHUNK;
		uint64_t cend = coff + CHUNK < j->size ? coff + CHUNK : j->size;
		uint64_t pos = s;
		if ((r = pread_all(fd, buf, (size_t)(cend - coff), coff)) < 0)
			break;
		while (next_range(o, cls, j->size, pos, &s, &e) && s < cend) {
			if (e > cend)
				e = cend;
			ks_xor(j, buf + (s - coff), (size_t)(e - s), s);
			pos = e;
		}
		job_mark(j);
		if ((r = pwrite_all(fd, buf, (size_t)(cend - coff), coff)) < 0)
			break;
		off = cend;
	}
	free(buf);
	return r;
}

int read_whole(struct job *j, uint8_t **out)
{
	uint8_t *buf;
	int r;

	if (j->size > WHOLE_MAX)
		return -EFBIG;
	if (!(buf = malloc(j->size ? (size_t)j->size : 1)))
		return -ENOMEM;
	if ((r = pread_all(j->fd, buf, (size_t)j->size, 0)) < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	return 0;
}

/* Reads the whole file, XORs it, writes it back at 0 (chunked when huge). */
static int enc_whole_fd(struct job *j)
{
	uint8_t *buf;
	int r;

	if (j->size > WHOLE_MAX)
		return xform_chunks(j, j->fd, VC_FULL);
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	job_mark(j);
	r = pwrite_all(j->fd, buf, (size_t)j->size, 0);
	free(buf);
	return r;
}

/* Writes n bytes to a new file name in pdir (O_EXCL, the original's mode). */
static int write_new(struct job *j, const char *name, const uint8_t *p, size_t n, int do_fsync)
{
	int fd, r;

	job_mark(j);
	fd = openat(j->pdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, j->mode & 07777);
	if (fd < 0)
		return -errno;
	r = write_all(fd, p, n);
	if (r == 0 && fchmod(fd, j->mode & 07777) < 0)
		r = -errno;
	if (r == 0 && do_fsync && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlinkat(j->pdir, name, 0);
	return r;
}

static int ext_name(const struct job *j, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s", j->base, j->c->o->ext);

	return n < 0 || (size_t)n >= cap || (size_t)n > NAME_MAX ? -ENAMETOOLONG : 0;
}

static int rename_ext(struct job *j)
{
	char name[NAME_MAX + 2];
	int r = ext_name(j, name, sizeof name);

	if (r < 0)
		return r;
	job_mark(j);
	return renameat2(j->pdir, j->base, j->pdir, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
}

/* A second descriptor opened by name must be the file the job checked. */
static int same_file(const struct job *j, int fd)
{
	struct xst a, b;
	int r = xstat(fd, "", &a);

	if (r == 0 && (r = check_file(j->c, &a)) == 0 && (r = xstat(j->fd, "", &b)) == 0)
		r = a.ino == b.ino && a.dev == b.dev ? 0 : -EAGAIN;
	return r;
}

/* ---- io_uring through raw syscalls --------------------------------------- */

void uring_free(struct uring *u)
{
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->cq && u->cq != u->sq)
		munmap(u->cq, u->cq_len);
	if (u->sq)
		munmap(u->sq, u->sq_len);
	if (u->fd >= 0)
		close(u->fd);
	memset(u, 0, sizeof *u);
	u->fd = -1;
}

static void *ring_map(struct uring *u, size_t len, uint64_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

int uring_init(struct uring *u)
{
	struct io_uring_params p;
	int single, r;

	memset(u, 0, sizeof *u);
	memset(&p, 0, sizeof p);
	u->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (u->fd < 0)
		return -errno;
	single = !!(p.features & IORING_FEAT_SINGLE_MMAP);
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (single && u->cq_len > u->sq_len)
		u->sq_len = u->cq_len;
	if (!(u->sq = ring_map(u, u->sq_len, IORING_OFF_SQ_RING)))
		goto fail;
	u->cq = single ? u->sq : ring_map(u, u->cq_len, IORING_OFF_CQ_RING);
	if (!u->cq)
		goto fail;
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	if (!(u->sqes = ring_map(u, u->sqes_len, IORING_OFF_SQES)))
		goto fail;
	u->sq_head = (unsigned *)((char *)u->sq + p.sq_off.head);
	u->sq_tail = (unsigned *)((char *)u->sq + p.sq_off.tail);
	u->sq_mask = (unsigned *)((char *)u->sq + p.sq_off.ring_mask);
	u->sq_array = (unsigned *)((char *)u->sq + p.sq_off.array);
	u->cq_head = (unsigned *)((char *)u->cq + p.cq_off.head);
	u->cq_tail = (unsigned *)((char *)u->cq + p.cq_off.tail);
	u->cq_mask = (unsigned *)((char *)u->cq + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((char *)u->cq + p.cq_off.cqes);
	return 0;
fail:
	r = -errno;
	uring_free(u);
	return r;
}

/* One IORING_OP_WRITE, submitted and waited for; returns its result. */
static int uring_write(struct uring *u, int fd, const void *buf, unsigned len, uint64_t off)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask, submit = 1;
	struct io_uring_sqe *sqe = &u->sqes[idx];

	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = IORING_OP_WRITE;
	sqe->fd = fd;
	sqe->addr = (uint64_t)(uintptr_t)buf;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = 1;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	for (;;) {
		unsigned head = *u->cq_head;
		long n;
		if (head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
			int res = u->cqes[head & *u->cq_mask].res;
			__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
			return res;
		}
		n = syscall(__NR_io_uring_enter, u->fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		submit = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE) == tail + 1 ? 0 : 1;
	}
}

/* ---- the variants -------------------------------------------------------- */

static int v_inplace(struct job *j)
{
	return enc_whole_fd(j);
}

static int v_partial(struct job *j)
{
	return xform_chunks(j, j->fd, j->c->o->variant->cls);
}

static int v_newdelete(struct job *j)
{
	char name[NAME_MAX + 2];
	uint8_t *buf;
	int r;

	if ((r = ext_name(j, name, sizeof name)) < 0 || (r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	r = write_new(j, name, buf, (size_t)j->size, 1);
	free(buf);
	if (r == 0 && unlinkat(j->pdir, j->base, 0) < 0)
		r = -errno;
	return r;
}

static int v_renameover(struct job *j)
{
	char name[64];
	uint8_t *buf;
	int r;

	snprintf(name, sizeof name, TMP_PREFIX "%ld.%" PRIu64, (long)getpid(),
	         __atomic_fetch_add(&tmp_seq, 1, __ATOMIC_RELAXED));
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	r = write_new(j, name, buf, (size_t)j->size, 0);
	free(buf);
	if (r == 0 && renameat(j->pdir, name, j->pdir, j->base) < 0) {
		r = -errno;
		unlinkat(j->pdir, name, 0);
	}
	return r;
}

static int v_renamethenenc(struct job *j)
{
	int r = rename_ext(j);

	return r < 0 ? r : enc_whole_fd(j);
}

static int v_encthenrename(struct job *j)
{
	int r = enc_whole_fd(j);

	return r < 0 ? r : rename_ext(j);
}

static int v_otrunc(struct job *j)
{
	uint8_t *buf;
	int fd, r;

	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	job_mark(j);
	if (j->preopened) {
		/* the descriptor predates the attack: truncate through it */
		fd = j->fd;
		r = ftruncate(fd, 0) < 0 ? -errno : 0;
	} else {
		fd = openat(j->pdir, j->base, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		r = fd < 0 ? -errno : same_file(j, fd);
	}
	if (r == 0)
		r = pwrite_all(fd, buf, (size_t)j->size, 0);
	if (fd >= 0 && fd != j->fd)
		close(fd);
	free(buf);
	return r;
}

static int v_truncate(struct job *j)
{
	job_mark(j);
	return ftruncate(j->fd, 0) < 0 ? -errno : 0;
}

static int v_punchhole(struct job *j)
{
	job_mark(j);
	if (fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)j->size) == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOSYS) {
		j->t_first = 0;
		return R_SKIP;
	}
	return -errno;
}

static int v_mmap(struct job *j)
{
	uint8_t *p;
	int r = 0;

	p = mmap(NULL, (size_t)j->size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	job_mark(j);
	ks_xor(j, p, (size_t)j->size, 0);
	if (msync(p, (size_t)j->size, MS_SYNC) < 0)
		r = -errno;
	munmap(p, (size_t)j->size);
	return r;
}

/* O_DIRECT for the 4096-aligned part, a normal descriptor for the tail.
 * A preopened descriptor gets O_DIRECT with F_SETFL and loses it again. */
static int odirect_write(struct job *j, const uint8_t *buf, uint64_t alen)
{
	int fl = fcntl(j->fd, F_GETFL), dfd, r = 0;

	if (j->preopened) {
		dfd = j->fd;
		if (fcntl(dfd, F_SETFL, fl | O_DIRECT) < 0)
			return errno == EINVAL ? R_SKIP : -errno;
	} else {
		dfd = openat(j->pdir, j->base, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (dfd < 0)
			return errno == EINVAL ? R_SKIP : -errno;
		r = same_file(j, dfd);
	}
	for (uint64_t off = 0; r == 0 && off < alen;) {
		size_t n = alen - off < CHUNK ? (size_t)(alen - off) : CHUNK;
		ssize_t w;
		job_mark(j);
		w = pwrite(dfd, buf + off, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			r = errno == EINVAL && off == 0 ? (j->t_first = 0, R_SKIP) : -errno;
		else if (w == 0 || w % 4096)
			r = -EIO;
		else
			off += (uint64_t)w;
	}
	if (j->preopened)
		fcntl(dfd, F_SETFL, fl);
	else
		close(dfd);
	return r;
}

static int v_odirect(struct job *j)
{
	uint64_t alen = j->size & ~(uint64_t)4095, cap = (j->size + 4095) & ~(uint64_t)4095;
	void *mem = NULL;
	uint8_t *buf;
	int r;

	if (j->size > WHOLE_MAX)
		return -EFBIG;
	if (posix_memalign(&mem, 4096, (size_t)cap) != 0)
		return -ENOMEM;
	buf = mem;
	r = pread_all(j->fd, buf, (size_t)j->size, 0);
	if (r == 0) {
		ks_xor(j, buf, (size_t)j->size, 0);
		if (alen)
			r = odirect_write(j, buf, alen);
	}
	if (r == 0 && j->size > alen) {
		job_mark(j);
		r = pwrite_all(j->fd, buf + alen, (size_t)(j->size - alen), alen);
	}
	free(mem);
	return r;
}

int v_iouring(struct job *j)
{
	struct uring u;
	uint8_t *buf;
	int r;

	if ((r = read_whole(j, &buf)) < 0)
		return r;
	ks_xor(j, buf, (size_t)j->size, 0);
	if ((r = uring_init(&u)) < 0) {
		free(buf);
		return r == -ENOSYS || r == -EPERM ? R_SKIP : r;
	}
	for (uint64_t off = 0; off < j->size;) {
		size_t n = j->size - off < CHUNK ? (size_t)(j->size - off) : CHUNK;
		int w;
		job_mark(j);
		w = uring_write(&u, j->fd, buf + off, (unsigned)n, off);
		if (w == -EINTR || w == -EAGAIN)
			continue;
		if (w <= 0) {
			r = w < 0 ? w : -EIO;
			break;
		}
		off += (uint64_t)w;
	}
	uring_free(&u);
	free(buf);
	return r;
}

static int v_b64(struct job *j)
{
	uint8_t *buf;
	char *txt;
	size_t rest, tlen;
	int r;

	if (j->size <= B64_KEEP)
		return 0; /* nothing past the magic */
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	rest = (size_t)j->size - B64_KEEP;
	ks_xor(j, buf + B64_KEEP, rest, B64_KEEP);
	tlen = sodium_base64_encoded_len(rest, sodium_base64_VARIANT_ORIGINAL);
	if (!(txt = malloc(tlen))) {
		free(buf);
		return -ENOMEM;
	}
	sodium_bin2base64(txt, tlen, buf + B64_KEEP, rest, sodium_base64_VARIANT_ORIGINAL);
	job_mark(j);
	r = pwrite_all(j->fd, txt, tlen - 1, B64_KEEP);
	free(txt);
	free(buf);
	return r;
}

const struct variant variants[] = {
	{"inplace", v_inplace, VC_FULL, O_RDWR, 0,
	 "read whole file, pwrite ciphertext over it at 0"},
	{"newdelete", v_newdelete, VC_FULL, O_RDONLY, 1,
	 "ciphertext to new NAME+ext (fsync), unlink NAME"},
	{"renameover", v_renameover, VC_FULL, O_RDONLY, 0,
	 "ciphertext to a temp name, rename it over NAME"},
	{"renamethenenc", v_renamethenenc, VC_FULL, O_RDWR, 1,
	 "rename NAME to NAME+ext, then encrypt it in place"},
	{"encthenrename", v_encthenrename, VC_FULL, O_RDWR, 1,
	 "encrypt in place, then rename NAME to NAME+ext"},
	{"otrunc", v_otrunc, VC_FULL, O_RDONLY, 0,
	 "read, open(O_WRONLY|O_TRUNC), write ciphertext"},
	{"truncate", v_truncate, VC_WIPE, O_RDWR, 0, "wiper: ftruncate to 0 bytes"},
	{"punchhole", v_punchhole, VC_WIPE, O_RDWR, 0,
	 "wiper: fallocate PUNCH_HOLE|KEEP_SIZE, whole file"},
	{"header", v_partial, VC_HEADER, O_RDWR, 0, "encrypt only the first 4096 bytes"},
	{"stripes16", v_partial, VC_STRIPES, O_RDWR, 0,
	 "encrypt every other 16 bytes (0-15 of each 32)"},
	{"nofm", v_partial, VC_NOFM, O_RDWR, 0,
	 "encrypt --n of every --m 64 KiB blocks (1 of 4)"},
	{"percent", v_partial, VC_PERCENT, O_RDWR, 0,
	 "encrypt first --percent % (4), at least 4096 B"},
	{"mmap", v_mmap, VC_FULL, O_RDWR, 0, "mmap MAP_SHARED, encrypt in memory, msync, munmap"},
	{"odirect", v_odirect, VC_FULL, O_RDWR, 0,
	 "O_DIRECT aligned writes, tail via a normal fd"},
	{"iouring", v_iouring, VC_FULL, O_RDWR, 0,
	 "IORING_OP_WRITE, raw io_uring syscalls (or 77)"},
	{"b64", v_b64, VC_B64, O_RDWR, 0,
	 "keep 16 bytes, rest becomes base64(ciphertext)"},
};
const size_t nvariants = sizeof variants / sizeof variants[0];

const struct variant *find_variant(const char *name)
{
	for (size_t i = 0; i < nvariants; i++)
		if (!strcmp(variants[i].name, name))
			return &variants[i];
	return NULL;
}

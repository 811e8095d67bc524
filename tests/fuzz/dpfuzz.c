// SPDX-License-Identifier: GPL-2.0
/*
 * dpfuzz: a structure-aware fuzzer of /dev/dmaplane, driven by
 * tests/fuzz/uapi.spec. See tests/fuzz/README.md.
 *
 * Processes: the supervisor (this main) forks one worker process that runs
 * the threads and exits with everything open; the supervisor watches the
 * kernel log while it runs, then checks that the module's counters come
 * back to where they were, and prints the summary. Statistics and findings
 * live in memory shared by the supervisor, the worker and the worker's
 * forked children.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dpfuzz.h"

struct globals g;

extern const char dpfuzz_spec_text[];
extern const char dpfuzz_spec_name[];

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* splitmix64: small, fast, and every op gets a stream of its own. */
uint64_t rnext(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t rbelow(struct rng *r, uint64_t n)
{
	return n ? rnext(r) % n : 0;
}

int rchance(struct rng *r, unsigned int pct)
{
	return rbelow(r, 100) < pct;
}

/*
 * The stream of operation @b of thread @a (@c: 0 for workers, else a
 * child's or helper's salt). Independent of what earlier operations drew,
 * so a run's choices depend only on the seed (README: reproducing).
 */
struct rng rng_for(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	struct rng r = { seed };

	r.s = rnext(&r) ^ (a * 0xd1b54a32d192ed03ULL);
	r.s = rnext(&r) ^ (b * 0xaef17502108ef2d9ULL);
	r.s = rnext(&r) ^ (c * 0x9e3779b97f4a7c15ULL);
	return r;
}

static int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

void logf_(struct tstate *t, const char *fmt, ...)
{
	char line[4096];
	int n;
	va_list ap;

	if (g.log_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%d %.3f t%d #%" PRIu64 " ", (int)getpid(),
		     (now_ns() - g.start_ns) / 1e9, t ? t->id : -1,
		     t ? t->opno : 0);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(g.log_fd, line, n) < 0)
		g.log_fd = -1;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static void code_raise(int code)
{
	int old = __atomic_load_n(&g.sh->code, __ATOMIC_RELAXED);

	/* hang (4) over crash (3) over a contract finding (1) */
	while (code > old &&
	       !__atomic_compare_exchange_n(&g.sh->code, &old, code, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void finding(struct tstate *t, int code, const char *key, const char *fmt, ...)
{
	struct shared *sh = g.sh;
	uint64_t h = hash_str(key);
	char msg[600];
	int i, n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	code_raise(code);
	logf_(t, "FINDING [%s] %s", key, msg);
	n = __atomic_load_n(&sh->nfind, __ATOMIC_ACQUIRE);
	for (i = 0; i < n && i < MAX_FIND; i++) {
		if (__atomic_load_n(&sh->findkey[i], __ATOMIC_RELAXED) == h) {
			__atomic_fetch_add(&sh->suppressed, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	i = __atomic_fetch_add(&sh->nfind, 1, __ATOMIC_ACQ_REL);
	if (i >= MAX_FIND) {
		__atomic_fetch_add(&sh->suppressed, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&sh->findkey[i], h, __ATOMIC_RELAXED);
	snprintf(sh->find[i], sizeof(sh->find[i]),
		 "[%s] seed %" PRIu64 ", pid %d, thread %d, op %" PRIu64 ": %s",
		 key, sh->seed, (int)getpid(), t ? t->id : -1,
		 t ? t->opno : 0, msg);
	fprintf(stderr, "dpfuzz: FINDING %s\n", sh->find[i]);
	if (t && t->cur[0])
		fprintf(stderr, "dpfuzz:   call: %s\n", t->cur);
}

void stat_call(int slot, int e)
{
	if (slot < 0 || slot >= NSLOTS)
		return;
	__atomic_fetch_add(&g.sh->calls[slot], 1, __ATOMIC_RELAXED);
	if (!e)
		__atomic_fetch_add(&g.sh->ok[slot], 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&g.sh->err[slot][e > 0 && e < ERRSLOTS - 1 ?
						    e : ERRSLOTS - 1],
				   1, __ATOMIC_RELAXED);
}

void stat_res(int type, int created)
{
	__atomic_fetch_add(created ? &g.sh->created[type] : &g.sh->freed[type],
			   1, __ATOMIC_RELAXED);
}

/* ---- pools ---- */

void pool_lock(void)
{
	pthread_mutex_lock(&g.lock);
}

void pool_unlock(void)
{
	pthread_mutex_unlock(&g.lock);
}

int res_new(int type)
{
	int i;

	for (i = 0; i < MAX_RES; i++) {
		if (g.res[i].type == R_NONE) {
			unsigned int gen = g.res[i].gen + 1;

			memset(&g.res[i], 0, sizeof(g.res[i]));
			g.res[i].gen = gen;
			g.res[i].type = type;
			g.res[i].dev = -1;
			g.res[i].fd = -1;
			g.res[i].peer = -1;
			g.res[i].owner = -1;
			g.res[i].data_map = -1;
			g.nres[type]++;
			stat_res(type, 1);
			return i;
		}
	}
	return -1;
}

void res_free(int i)
{
	struct res *r = &g.res[i];

	if (r->type == R_NONE)
		return;
	if (!r->inherited)
		stat_res(r->type, 0);
	g.nres[r->type]--;
	free(r->cookies);
	r->cookies = NULL;
	r->type = R_NONE;
	r->busy = 0;
}

int res_pick(struct rng *r, int type, int (*pred)(const struct res *, void *),
	     void *arg, int checkout)
{
	int cand[MAX_RES], n = 0, i, pick;

	pool_lock();
	for (i = 0; i < MAX_RES; i++) {
		const struct res *x = &g.res[i];

		if (x->type != type || x->busy)
			continue;
		if (x->dev >= 0 && (!g.dev[x->dev].used ||
				    g.dev[x->dev].gen != x->devgen))
			continue;
		if (pred && !pred(x, arg))
			continue;
		cand[n++] = i;
	}
	if (!n) {
		pool_unlock();
		return -1;
	}
	pick = cand[rbelow(r, n)];
	if (checkout)
		g.res[pick].busy = 1;
	pool_unlock();
	return pick;
}

void res_release(int i)
{
	pool_lock();
	g.res[i].busy = 0;
	pool_unlock();
}

/* A dmaplane fd for one call: the thread's own or the shared one. */
int dev_pick(struct tstate *t, struct rng *r)
{
	int cand[MAX_DEV], n = 0, i, d;

	pool_lock();
	for (i = 0; i < MAX_DEV; i++) {
		struct devfd *x = &g.dev[i];

		if (!x->used || x->closing)
			continue;
		if (x->owner >= 0 && x->owner != t->id)
			continue;
		cand[n++] = i;
	}
	if (!n) {
		pool_unlock();
		return -1;
	}
	d = cand[rbelow(r, n)];
	g.dev[d].inuse++;
	pool_unlock();
	return d;
}

void dev_release(int d)
{
	if (d < 0)
		return;
	pool_lock();
	g.dev[d].inuse--;
	pool_unlock();
}

/*
 * State oracles (EBUSY while mapped, exactly-once completions...) hold on
 * a devfd only one thread uses and no child touched.
 */
int dev_excl(struct tstate *t, int d)
{
	const struct devfd *x;

	if (d < 0)
		return 0;
	x = &g.dev[d];
	if (x->tainted || g.children_alive)
		return 0;
	return x->owner == t->id || (x->owner < 0 && g.o.threads == 1);
}

int dev_handle_type(int d, uint32_t h)
{
	int i, type = 0;

	pool_lock();
	for (i = 0; i < MAX_RES; i++) {
		const struct res *x = &g.res[i];

		if ((x->type == R_BUFFER || x->type == R_ENDPOINT ||
		     x->type == R_MR) && x->dev == d &&
		    x->devgen == g.dev[d].gen && x->handle == h) {
			type = x->type;
			break;
		}
	}
	pool_unlock();
	return type;
}

int dev_is_stale(int d, uint32_t h)
{
	int i, n, found = 0;

	pool_lock();
	n = g.dev[d].nstale < STALE_RING ? g.dev[d].nstale : STALE_RING;
	for (i = 0; i < n; i++)
		found |= g.dev[d].stale[i] == h;
	pool_unlock();
	return found;
}

void dev_mark_stale(int d, uint32_t h)
{
	struct devfd *x = &g.dev[d];

	x->stale[x->nstale++ % STALE_RING] = h;
	if (x->nstale >= 2 * STALE_RING)
		x->nstale = STALE_RING;
}

/* Handles are cyclic per file: after max_handles creates one may come back. */
int dev_wrapped(int d)
{
	return g.dev[d].creates + 1024 >= g.max_handles;
}

int cmdi(const char *name)
{
	return spec_cmd_index(&g.spec, name);
}

/* ---- calls in progress, the watchdog ---- */

void call_begin(struct tstate *t, uint64_t deadline_ms, const char *what)
{
	uint64_t now = now_ns();
	int slot = t->id < MAX_TSTATE ? t->id : MAX_TSTATE - 1;

	snprintf(t->cur, sizeof(t->cur), "%s", what);
	if (!t->in_child) {
		memcpy(g.sh->cur[slot], t->cur, sizeof(t->cur));
		g.sh->cur_ns[slot] = now;
	}
	t->deadline = now + deadline_ms * 1000000ULL;
	__atomic_store_n(&t->call_start, now, __ATOMIC_RELEASE);
}

void call_end(struct tstate *t)
{
	int slot = t->id < MAX_TSTATE ? t->id : MAX_TSTATE - 1;

	__atomic_store_n(&t->call_start, 0, __ATOMIC_RELEASE);
	if (!t->in_child)
		g.sh->cur_ns[slot] = 0;
}

static void read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

static void *watchdog(void *unused)
{
	(void)unused;
	for (;;) {
		int i;

		for (i = 0; i < MAX_TSTATE; i++) {
			struct tstate *t = g.ts[i];
			uint64_t start, now;

			if (!t || !t->registered)
				continue;
			start = __atomic_load_n(&t->call_start,
						__ATOMIC_ACQUIRE);
			now = now_ns();	/* after start: never before it */
			if (!start || now < start)
				continue;
			if (now > t->deadline) {
				/* interrupt the wait; again every 50 ms */
				pthread_kill(t->pt, SIGUSR1);
				__atomic_fetch_add(&g.sh->interrupts, 1,
						   __ATOMIC_RELAXED);
				t->deadline = now + 50000000ULL;
			}
			if (now - start > (uint64_t)g.o.hang_secs * 1000000000ULL &&
			    t->call_start == start) {
				char path[64], stack[1024];

				snprintf(path, sizeof(path),
					 "/proc/self/task/%d/stack", t->tid);
				read_small(path, stack, sizeof(stack));
				finding(t, 4, "hang",
					"a call did not return for %d s despite signals: %s; kernel stack: %s",
					g.o.hang_secs, t->cur,
					stack[0] ? stack : "(unreadable)");
				g.sh->stop = 1;
				t->call_start = 0;	/* report once */
			}
		}
		usleep(5000);
	}
	return NULL;
}

/* ---- touching memory that may fault ---- */

static __thread sigjmp_buf touch_jmp;
static __thread volatile int touch_armed;

int touch_guarded(void *addr, size_t len, int write, uint8_t pattern)
{
	volatile uint8_t *p = addr;
	int sig;
	size_t i;

	touch_armed = 1;
	sig = sigsetjmp(touch_jmp, 1);
	if (sig) {
		touch_armed = 0;
		return sig;
	}
	for (i = 0; i < len; i += 4096) {
		if (write)
			p[i] = pattern;
		else
			(void)p[i];
	}
	if (len) {
		if (write)
			p[len - 1] = pattern;
		else
			(void)p[len - 1];
	}
	touch_armed = 0;
	return 0;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	char msg[512];
	int n, i;

	(void)uc;
	if (touch_armed) {
		touch_armed = 0;
		siglongjmp(touch_jmp, sig);
	}
	/* The fuzzer itself crashed: say where, then die of the signal. */
	n = snprintf(msg, sizeof(msg),
		     "dpfuzz: CRASH of the fuzzer: signal %d at address %p, seed %" PRIu64 ", pid %d\n",
		     sig, si->si_addr, g.sh ? g.sh->seed : 0, (int)getpid());
	if (write(2, msg, n) < 0)
		_exit(3);
	if (g.sh) {
		code_raise(3);
		i = __atomic_fetch_add(&g.sh->nfind, 1, __ATOMIC_ACQ_REL);
		if (i < MAX_FIND)
			memcpy(g.sh->find[i], msg + 8,
			       (size_t)n - 8 < sizeof(g.sh->find[i]) ?
			       (size_t)n - 9 : sizeof(g.sh->find[i]) - 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;	/* no SA_RESTART: waits see -EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	/* DPFUZZ_NOCATCH=1: leave faults to a debugger or a sanitizer */
	if (getenv("DPFUZZ_NOCATCH"))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

struct tstate *tstate_new(int id)
{
	struct tstate *t = calloc(1, sizeof(*t));
	long page = sysconf(_SC_PAGESIZE);
	int i;

	if (!t)
		return NULL;
	t->id = id;
	t->tid = gettid_();
	t->pt = pthread_self();
	t->arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t->guard = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t->ropage = mmap(NULL, page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->arena == MAP_FAILED || t->guard == MAP_FAILED ||
	    t->ropage == MAP_FAILED) {
		free(t);
		return NULL;
	}
	mprotect(t->guard + page, page, PROT_NONE);
	memset(t->ropage, 0x5a, page);
	mprotect(t->ropage, page, PROT_READ);
	pool_lock();
	for (i = 0; i < MAX_TSTATE; i++) {
		if (!g.ts[i]) {
			g.ts[i] = t;
			break;
		}
	}
	pool_unlock();
	t->registered = 1;
	return t;
}

void tstate_free(struct tstate *t)
{
	long page = sysconf(_SC_PAGESIZE);
	int i;

	t->registered = 0;
	pool_lock();
	for (i = 0; i < MAX_TSTATE; i++)
		if (g.ts[i] == t)
			g.ts[i] = NULL;
	pool_unlock();
	munmap(t->arena, ARENA_SIZE);
	munmap(t->guard, 2 * page);
	munmap(t->ropage, page);
	free(t);
}

/* ---- the worker process ---- */

int open_dev(int owner)
{
	int fd = open(g.o.dev_path, O_RDWR | O_CLOEXEC), i;

	if (fd < 0)
		return -1;
	pool_lock();
	for (i = 0; i < MAX_DEV; i++) {
		if (!g.dev[i].used) {
			unsigned int gen = g.dev[i].gen + 1;

			memset(&g.dev[i], 0, sizeof(g.dev[i]));
			g.dev[i].used = 1;
			g.dev[i].gen = gen;
			g.dev[i].fd = fd;
			g.dev[i].owner = owner;
			break;
		}
	}
	pool_unlock();
	if (i == MAX_DEV) {
		close(fd);
		return -1;
	}
	return i;
}

/* Weights of the operations; the ioctl share is the rest. */
static const struct { int op; int weight; } extra_weights[] = {
	{ OP_MMAP, 60 }, { OP_MUNMAP, 20 }, { OP_MREMAP, 8 },
	{ OP_MPROTECT, 8 }, { OP_MADVISE, 8 }, { OP_TOUCH, 30 },
	{ OP_DMABUF_MMAP, 15 }, { OP_DMABUF_SYNC, 15 }, { OP_DMABUF_MISC, 10 },
	{ OP_DMABUF_CLOSE, 12 }, { OP_EVENTFD_NEW, 6 }, { OP_EVENTFD_IO, 6 },
	{ OP_EVENTFD_CLOSE, 5 }, { OP_CONNECT_PAIR, 12 }, { OP_TRAFFIC, 45 },
	{ OP_FORK, 3 }, { OP_REOPEN, 3 }, { OP_DEBUGFS, 6 },
	{ OP_UREGION, 6 },
};

/* One operation of thread @t: an ioctl (60%) or another kind. */
void one_op(struct tstate *t, struct rng *r)
{
	int total = 0, pick;
	size_t i;

	if (rchance(r, 60)) {
		op_ioctl(t, r);
		return;
	}
	for (i = 0; i < sizeof(extra_weights) / sizeof(extra_weights[0]); i++)
		total += extra_weights[i].weight;
	pick = (int)rbelow(r, total);
	for (i = 0; i < sizeof(extra_weights) / sizeof(extra_weights[0]); i++) {
		pick -= extra_weights[i].weight;
		if (pick < 0)
			break;
	}
	op_extra(t, r, extra_weights[i].op);
}

static int time_up(struct tstate *t)
{
	if (__atomic_load_n(&g.sh->stop, __ATOMIC_RELAXED))
		return 1;
	if (g.o.ops && t->opno >= g.o.ops)
		return 1;
	return g.o.duration > 0 && now_ns() >= g.end_ns;
}

static void *worker_thread(void *arg)
{
	struct tstate *t = tstate_new((int)(intptr_t)arg);

	if (!t) {
		finding(NULL, 3, "setup", "thread memory: %s", strerror(errno));
		return NULL;
	}
	if (open_dev(t->id) < 0)
		finding(t, 3, "setup", "open %s: %s", g.o.dev_path,
			strerror(errno));
	while (!time_up(t)) {
		struct rng r = rng_for(g.o.seed, (uint64_t)t->id, t->opno, 0);

		one_op(t, &r);
		t->opno++;
	}
	logf_(t, "thread done after %" PRIu64 " ops", t->opno);
	t->registered = 0;
	return NULL;
}

/* Locks held across fork(), so the child finds them consistent. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&g.lock);
}

static void atfork_release(void)
{
	pthread_mutex_unlock(&g.lock);
}

static int worker_main(void)
{
	pthread_t th[MAX_THREADS], wd;
	struct tstate *main_t;
	struct rng r;
	int i;

	g.sh->worker_pid = getpid();
	install_signals();
	pthread_atfork(atfork_prepare, atfork_release, atfork_release);
	main_t = tstate_new(MAX_TSTATE - 1);
	if (!main_t)
		return 3;
	g.shared_dev = open_dev(-1);
	if (g.shared_dev < 0) {
		fprintf(stderr, "dpfuzz: open %s: %s\n", g.o.dev_path,
			strerror(errno));
		return 2;
	}
	ops_init_globals();
	if (pthread_create(&wd, NULL, watchdog, NULL)) {
		fprintf(stderr, "dpfuzz: watchdog thread: %s\n", strerror(errno));
		return 3;
	}
	pthread_detach(wd);
	for (i = 0; i < g.o.threads; i++)
		if (pthread_create(&th[i], NULL, worker_thread,
				   (void *)(intptr_t)i)) {
			fprintf(stderr, "dpfuzz: thread: %s\n", strerror(errno));
			return 3;
		}
	for (i = 0; i < g.o.threads; i++)
		pthread_join(th[i], NULL);

	/* Exit with everything open, or close it first (the seed says). */
	r = rng_for(g.o.seed, 9999, 0, 7);
	if (rchance(&r, 50)) {
		logf_(main_t, "exit: orderly close first");
		worker_orderly_close();
	} else {
		logf_(main_t, "exit: with everything open");
	}
	return 0;
}

/* ---- the supervisor ---- */

static const char *const builtin_patterns[] = {
	"WARNING:", "BUG:", "Oops", "Call Trace", "general protection fault",
	"kernel BUG", "refcount_t:", "list_(add|del) corruption", "UBSAN:",
	"KASAN:", "possible (recursive|circular) locking",
	"inconsistent lock state", "suspicious RCU usage",
	"DMA-API: .*(device driver|out of memory|exceeded|pending)",
	"unreferenced object", "blocked for more than", "soft lockup",
};

static regex_t *pats;
static int npats;

static void load_patterns(void)
{
	char path[PATH_MAX], line[512];
	const char *cand[3];
	FILE *f = NULL;
	size_t i;
	int n;

	cand[0] = g.o.patterns;
	cand[1] = "tests/kernel-log-bad.re";
	n = readlink("/proc/self/exe", path, sizeof(path) - 40);
	if (n > 0) {
		path[n] = 0;
		if (strrchr(path, '/'))
			strcpy(strrchr(path, '/'), "/../../tests/kernel-log-bad.re");
		cand[2] = path;
	} else {
		cand[2] = NULL;
	}
	for (i = 0; i < 3 && !f; i++)
		if (cand[i])
			f = fopen(cand[i], "r");
	pats = calloc(64, sizeof(*pats));
	if (!pats)
		return;
	if (f) {
		while (npats < 64 && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			if (!line[0] || line[0] == '#')
				continue;
			if (!regcomp(&pats[npats], line, REG_EXTENDED | REG_NOSUB))
				npats++;
		}
		fclose(f);
		return;
	}
	for (i = 0; i < sizeof(builtin_patterns) / sizeof(builtin_patterns[0]); i++)
		if (!regcomp(&pats[npats], builtin_patterns[i],
			     REG_EXTENDED | REG_NOSUB))
			npats++;
}

/*
 * New kernel log records matching a bad pattern become findings, with
 * the record before (a WARNING's own message, e.g. DMA-API's naming the
 * device, comes one record earlier).
 */
static void scan_kmsg(int fd, int *reported)
{
	static char prev[512];
	char rec[2048];
	ssize_t n;
	int i;

	if (fd < 0)
		return;
	for (;;) {
		char *msg;

		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = 0;
		for (i = 0; i < npats; i++) {
			if (regexec(&pats[i], msg, 0, NULL, 0))
				continue;
			if ((*reported)++ < 1) {
				char calls[1200] = "";
				int k;
				size_t len = 0;

				for (k = 0; k < MAX_TSTATE; k++) {
					if (!g.sh->cur_ns[k])
						continue;
					len += snprintf(calls + len,
							len < sizeof(calls) ? sizeof(calls) - len : 0,
							" {%s}", g.sh->cur[k]);
				}
				finding(NULL, 1, "kernel-log",
					"kernel log: \"%s\" after \"%s\"; calls in flight:%s",
					msg, prev, calls[0] ? calls : " none");
			} else {
				logf_(NULL, "kernel log: %s", msg);
			}
			break;
		}
		n = (ssize_t)strnlen(msg, sizeof(prev) - 1);
		memcpy(prev, msg, (size_t)n);
		prev[n] = 0;
	}
}

static const char *const counters[] = {
	"open_contexts", "buffers", "buffer_bytes", "mappings", "exports",
	"attachments", "endpoints", "mrs", "pinned_pages", "gpu_pinned_bytes",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

static int read_counters(long long *v)
{
	char buf[4096], *p;
	size_t i;

	read_small("/sys/kernel/debug/dmaplane/info", buf, sizeof(buf));
	if (!buf[0])
		return -1;
	for (i = 0; i < NCOUNTERS; i++) {
		char key[64];

		snprintf(key, sizeof(key), "\n%s: ", counters[i]);
		p = strstr(buf, key);
		v[i] = p ? atoll(p + strlen(key)) : 0;
	}
	return 0;
}

static void summary(double secs)
{
	struct shared *sh = g.sh;
	uint64_t total = 0;
	int s, e;
	static const char *const rnames[R_NTYPES] = {
		"", "buffers", "endpoints", "MRs", "dma-bufs", "eventfds",
		"mappings", "user regions", "connections",
	};

	printf("\ndpfuzz: summary (seed %" PRIu64 ", %.1f s, %d thread%s)\n",
	       sh->seed, secs, g.o.threads, g.o.threads == 1 ? "" : "s");
	printf("  %-18s %9s %9s  errnos\n", "call", "calls", "ok");
	for (s = 0; s < NSLOTS; s++) {
		const char *name = s < g.spec.ncmd ? g.spec.cmd[s].name :
				   s - g.spec.ncmd < OP_NR ?
				   op_name(s - g.spec.ncmd) : NULL;
		char errs[1024] = "";
		size_t len = 0;

		if (!name || !sh->calls[s])
			continue;
		total += sh->calls[s];
		for (e = 1; e < ERRSLOTS; e++) {
			const char *en = e < ERRSLOTS - 1 ? errno_name(e) : "other";

			if (!sh->err[s][e])
				continue;
			len += snprintf(errs + len,
					len < sizeof(errs) ? sizeof(errs) - len : 0,
					" %s:%u", en ? en : "?", sh->err[s][e]);
		}
		printf("  %-18s %9" PRIu64 " %9" PRIu64 " %s\n", name,
		       sh->calls[s], sh->ok[s], errs);
	}
	printf("  %-18s %9" PRIu64 "\n", "total", total);
	printf("  resources (created/freed by the fuzzer; the rest went with exit or close):");
	for (s = 1; s < R_NTYPES; s++)
		printf(" %s %" PRIu64 "/%" PRIu64, rnames[s], sh->created[s],
		       sh->freed[s]);
	printf("\n  children %" PRIu64 " (killed %" PRIu64 "), interrupts %" PRIu64
	       ", must-fail inputs checked %" PRIu64 ", out fields checked for kernel addresses %" PRIu64
	       ", traffic batches checked end to end %" PRIu64 "\n",
	       sh->children, sh->children_killed, sh->interrupts,
	       sh->must_fail_checked, sh->kaddr_checked, sh->traffic_checked);
	printf("  findings: %d", sh->nfind < MAX_FIND ? sh->nfind : MAX_FIND);
	if (sh->suppressed)
		printf(" (+%" PRIu64 " repeats)", sh->suppressed);
	printf("\n");
	for (s = 0; s < sh->nfind && s < MAX_FIND; s++)
		printf("  FINDING %s\n", sh->find[s]);
	printf("dpfuzz: seed %" PRIu64 ": %s\n", sh->seed,
	       sh->nfind ? "FAILED" : "clean");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dpfuzz [--seed N] [--duration S] [--threads T] [--ops N] [--log FILE]\n"
		"              [--spec FILE] [--dev PATH] [--patterns FILE] [--hang-secs S]\n"
		"              [--mem-budget MB] [--no-fork] [--no-rdma] [--shared]\n"
		"              [--check-spec] [-v]\n"
		"Fuzzes /dev/dmaplane from tests/fuzz/uapi.spec (see tests/fuzz/README.md).\n"
		"  --seed N        reproducible run (default: a random seed, printed first)\n"
		"  --duration S    seconds to run (default 60; 0 with --ops: until done)\n"
		"  --threads T     worker threads (default 4, at most %d)\n"
		"  --ops N         operations per thread (default: no limit)\n"
		"  --log FILE      every call, one line each (appended by all processes)\n"
		"  --spec FILE     another description (default: the one built in)\n"
		"  --patterns FILE kernel log patterns (default tests/kernel-log-bad.re)\n"
		"  --hang-secs S   a call that long despite signals is a hang (default 120)\n"
		"  --mem-budget MB bytes of buffers alive at once (default 96)\n"
		"  --no-fork       no fork() children   --no-rdma  no connections\n"
		"  --shared        others use the module meanwhile (a soak): its\n"
		"                  module-wide counters are not checked\n"
		"  --check-spec    parse the description, print it in short and exit\n"
		"Exit: 0 clean, 1 a finding, 2 cannot run (no device, bad spec), 3 the\n"
		"fuzzer crashed, 4 a hang.\n", MAX_THREADS);
}

static void print_spec(const struct spec *s)
{
	int i, j;

	for (i = 0; i < s->ncmd; i++) {
		const struct spec_cmd *c = &s->cmd[i];
		int e, ne = 0;

		for (e = 1; e < SPEC_ERRNO_MAX; e++)
			ne += errset_has(&c->errs, e);
		printf("%-17s nr 0x%02x struct %-14s %3u bytes, v1 %3u, %d errnos:",
		       c->name, c->nr, c->orig->name, c->st->size, c->v1_end,
		       ne);
		for (j = 0; j < c->st->nf; j++)
			printf(" %s:%s", c->st->f[j].name,
			       spec_kind_name(c->st->f[j].kind));
		printf("\n");
	}
	printf("%d commands, %d structs, %d header checks\n", s->ncmd, s->nst,
	       s->ncheck);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", 1, NULL, 's' }, { "duration", 1, NULL, 'd' },
		{ "threads", 1, NULL, 't' }, { "ops", 1, NULL, 'n' },
		{ "log", 1, NULL, 'l' }, { "spec", 1, NULL, 'S' },
		{ "dev", 1, NULL, 'D' }, { "patterns", 1, NULL, 'p' },
		{ "hang-secs", 1, NULL, 'H' }, { "mem-budget", 1, NULL, 'm' },
		{ "no-fork", 0, NULL, 'F' }, { "no-rdma", 0, NULL, 'R' },
		{ "shared", 0, NULL, 'x' },
		{ "check-spec", 0, NULL, 'C' }, { "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int seed_given = 0, opt, kmsg = -1, reported = 0, status = 0, killed = 0;
	long long base[NCOUNTERS], cur[NCOUNTERS];
	int have_base;
	const char *spec_text = dpfuzz_spec_text, *spec_name = dpfuzz_spec_name;
	char *file_text = NULL, err[512];
	uint64_t t0;
	pid_t pid;
	size_t i;

	g.o.duration = 60;
	g.o.threads = 4;
	g.o.dev_path = "/dev/dmaplane";
	g.o.hang_secs = 120;
	g.o.mem_budget = 96ULL << 20;
	g.log_fd = -1;
	while ((opt = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (opt) {
		case 's': g.o.seed = strtoull(optarg, NULL, 0); seed_given = 1; break;
		case 'd': g.o.duration = atof(optarg); break;
		case 't': g.o.threads = atoi(optarg); break;
		case 'n': g.o.ops = strtoull(optarg, NULL, 0); break;
		case 'l': g.o.log = optarg; break;
		case 'S': g.o.spec_file = optarg; break;
		case 'D': g.o.dev_path = optarg; break;
		case 'p': g.o.patterns = optarg; break;
		case 'H': g.o.hang_secs = atoi(optarg); break;
		case 'm': g.o.mem_budget = strtoull(optarg, NULL, 0) << 20; break;
		case 'F': g.o.no_fork = 1; break;
		case 'R': g.o.no_rdma = 1; break;
		case 'x': g.o.shared_module = 1; break;
		case 'C': g.o.check_spec = 1; break;
		case 'v': g.o.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || g.o.threads < 1 || g.o.threads > MAX_THREADS ||
	    g.o.duration < 0 || g.o.hang_secs < 1 ||
	    (g.o.duration == 0 && !g.o.ops)) {
		usage(stderr);
		return 2;
	}
	if (!seed_given) {
		if (getrandom(&g.o.seed, sizeof(g.o.seed), 0) != sizeof(g.o.seed))
			g.o.seed = now_ns() ^ ((uint64_t)getpid() << 32);
		g.o.seed &= (1ULL << 48) - 1;	/* easy to type back */
	}
	/* The seed comes first, whatever happens next. */
	printf("dpfuzz: seed %" PRIu64 "\n", g.o.seed);
	fflush(stdout);

	if (g.o.spec_file) {
		FILE *f = fopen(g.o.spec_file, "r");
		long len;

		if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0) {
			fprintf(stderr, "dpfuzz: %s: %s\n", g.o.spec_file,
				strerror(errno));
			return 2;
		}
		rewind(f);
		file_text = calloc(1, len + 1);
		if (!file_text || fread(file_text, 1, len, f) != (size_t)len) {
			fprintf(stderr, "dpfuzz: %s: cannot read\n", g.o.spec_file);
			return 2;
		}
		fclose(f);
		spec_text = file_text;
		spec_name = g.o.spec_file;
	}
	if (spec_parse(&g.spec, spec_text, spec_name, err, sizeof(err))) {
		fprintf(stderr, "dpfuzz: %s\n", err);
		return 2;
	}
	printf("dpfuzz: spec %s: %d commands, %d structs\n", spec_name,
	       g.spec.ncmd, g.spec.nst);
	if (g.spec.ncmd + OP_NR > NSLOTS) {
		fprintf(stderr, "dpfuzz: too many commands for the statistics\n");
		return 2;
	}
	if (g.o.check_spec) {
		print_spec(&g.spec);
		return 0;
	}
	for (i = 0; i < (size_t)g.spec.nparam; i++) {
		char path[128], buf[64];

		snprintf(path, sizeof(path), "/sys/module/dmaplane/parameters/%s",
			 g.spec.param[i].name);
		read_small(path, buf, sizeof(buf));
		if (buf[0])
			g.spec.param[i].value = strtoll(buf, NULL, 0);
	}
	g.max_handles = (uint64_t)spec_param(&g.spec, "max_handles");

	if (access(g.o.dev_path, F_OK)) {
		fprintf(stderr,
			"dpfuzz: %s is missing: the dmaplane module is not loaded.\n"
			"dpfuzz: load it first, e.g. in a guest: modprobe -a ib_core rdma_cm; "
			"insmod build/modules/$(uname -r)/src/module/dmaplane.ko (tests/fuzz/README.md)\n",
			g.o.dev_path);
		return 2;
	}
	{
		int fd = open(g.o.dev_path, O_RDWR);

		if (fd < 0) {
			fprintf(stderr, "dpfuzz: cannot open %s: %s\n",
				g.o.dev_path, strerror(errno));
			return 2;
		}
		close(fd);
	}

	g.sh = mmap(NULL, sizeof(*g.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g.sh == MAP_FAILED) {
		perror("dpfuzz: shared memory");
		return 2;
	}
	g.sh->seed = g.o.seed;
	if (g.o.log) {
		g.log_fd = open(g.o.log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
				O_CLOEXEC, 0644);
		if (g.log_fd < 0) {
			fprintf(stderr, "dpfuzz: %s: %s\n", g.o.log, strerror(errno));
			return 2;
		}
		logf_(NULL, "seed %" PRIu64 " threads %d duration %.1f ops %" PRIu64,
		      g.o.seed, g.o.threads, g.o.duration, g.o.ops);
	}
	pthread_mutex_init(&g.lock, NULL);
	if (access("/sys/kernel/debug/dmaplane", F_OK) && !geteuid())
		(void)!system("mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null");
	have_base = !g.o.shared_module && !read_counters(base);
	load_patterns();
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);
	printf("dpfuzz: %d thread%s, %.0f s%s, device %s, rdma %s, kernel log %s, counters %s\n",
	       g.o.threads, g.o.threads == 1 ? "" : "s", g.o.duration,
	       g.o.ops ? " (or the ops limit)" : "", g.o.dev_path,
	       g.o.no_rdma ? "off" : getenv("DP_GUEST_IP") ? getenv("DP_GUEST_IP") :
	       "no DP_GUEST_IP", kmsg >= 0 ? "watched" : "not readable",
	       have_base ? "checked" : g.o.shared_module ? "shared (not checked)" :
	       "not readable (no debugfs)");
	fflush(stdout);

	t0 = now_ns();
	g.start_ns = t0;
	g.end_ns = t0 + (uint64_t)(g.o.duration * 1e9);
	pid = fork();
	if (pid < 0) {
		perror("dpfuzz: fork");
		return 2;
	}
	if (!pid)
		_exit(worker_main());

	/* Supervise: the kernel log while it runs; a worker that outlives
	 * its time by the hang limit is stuck (in the kernel). */
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		uint64_t late = g.end_ns + (uint64_t)(g.o.hang_secs + 30) * 1000000000ULL;

		if (w == pid)
			break;
		scan_kmsg(kmsg, &reported);
		if (g.o.duration > 0 && now_ns() > late) {
			char path[64], stack[1024];

			snprintf(path, sizeof(path), "/proc/%d/stack", pid);
			read_small(path, stack, sizeof(stack));
			finding(NULL, 4, "stuck",
				"the worker process did not exit %d s after its time; stack: %s",
				g.o.hang_secs + 30, stack);
			kill(pid, SIGKILL);
			killed = 1;
			if (!waitpid(pid, &status, WNOHANG)) {
				sleep(5);
				if (!waitpid(pid, &status, WNOHANG)) {
					summary((now_ns() - t0) / 1e9);
					return 4;
				}
			}
			break;
		}
		usleep(100000);
	}
	if (WIFSIGNALED(status) && !killed &&
	    (WTERMSIG(status) == SIGKILL || !g.sh->code))
		finding(NULL, 3, "crash", "the worker process died of signal %d (%s)%s",
			WTERMSIG(status), strsignal(WTERMSIG(status)),
			WTERMSIG(status) == SIGKILL ? ", not sent by dpfuzz (the OOM killer?)" : "");
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return 2;

	/* Everything the worker held must come back: endpoints go through
	 * the module's work queue and rdma_cm, so give it a while. */
	if (have_base) {
		uint64_t until = now_ns() + 30000000000ULL;
		int same = 0;

		while (!same && now_ns() < until) {
			same = !read_counters(cur);
			for (i = 0; same && i < NCOUNTERS; i++)
				same = cur[i] == base[i];
			if (!same)
				usleep(200000);
		}
		if (!same) {
			char diff[512] = "";
			size_t len = 0;

			for (i = 0; i < NCOUNTERS; i++)
				if (cur[i] != base[i])
					len += snprintf(diff + len,
							len < sizeof(diff) ? sizeof(diff) - len : 0,
							" %s %lld (was %lld)", counters[i],
							cur[i], base[i]);
			finding(NULL, 1, "leak",
				"30 s after the worker exited the module still counts:%s",
				diff);
		}
	}
	usleep(200000);
	scan_kmsg(kmsg, &reported);
	summary((now_ns() - t0) / 1e9);
	free(file_text);
	return g.sh->nfind ? (g.sh->code ? g.sh->code : 1) : 0;
}

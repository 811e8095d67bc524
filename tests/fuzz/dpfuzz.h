/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dpfuzz: structure-aware fuzzer of the dmaplane UAPI (tests/fuzz/README.md).
 *
 * dpfuzz.c  options, the supervisor, the worker process and its threads,
 *           the watchdog, resource pools, statistics, findings, the log
 * gen.c     one ioctl from the spec: generate, classify, call, check
 * ops.c     what the spec cannot say: per-command hooks (resources, extra
 *           rules, result checks), mmap/munmap, dma-buf and eventfd ops,
 *           loopback connections and traffic, fork, close/reopen, debugfs
 */
#ifndef DPFUZZ_H
#define DPFUZZ_H

#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"

#define MAX_THREADS	32
#define MAX_TSTATE	(2 * MAX_THREADS + 8)
#define MAX_RES		4096
#define MAX_DEV		96
#define MAX_FIND	48
#define NSLOTS		64	/* statistics slots: spec commands, then OP_* */
#define ERRSLOTS	160	/* errno histogram; the last slot: larger errnos */
#define STALE_RING	256
#define ARG_MAX		1024	/* generated struct and tail */
#define KADDR_MIN	0xffff800000000000ULL

/* Extra operations, counted after the spec's commands. */
enum {
	OP_MMAP, OP_MUNMAP, OP_MREMAP, OP_MPROTECT, OP_MADVISE, OP_TOUCH,
	OP_DMABUF_MMAP, OP_DMABUF_SYNC, OP_DMABUF_MISC, OP_DMABUF_CLOSE,
	OP_EVENTFD_NEW, OP_EVENTFD_IO, OP_EVENTFD_CLOSE, OP_CONNECT_PAIR,
	OP_TRAFFIC, OP_FORK, OP_REOPEN, OP_DEBUGFS, OP_UREGION, OP_NR
};

enum restype {
	R_NONE, R_BUFFER, R_ENDPOINT, R_MR, R_DMABUF, R_EVENTFD, R_MAPPING,
	R_UREGION, R_CONN, R_NTYPES
};

enum bufkind { BK_PAGES, BK_COHERENT, BK_HUGE, BK_USER, BK_IMPORT, BK_GPU };
enum epstate { EP_IDLE, EP_LISTENING, EP_CONNECTED, EP_DEAD };

struct res {
	int type;		/* R_NONE: a free slot */
	unsigned int gen;	/* bumped on every reuse of the slot */
	int busy;		/* checked out by one thread */
	int dev;		/* devfd of handles and mappings, -1 */
	unsigned int devgen;
	uint32_t handle;
	int fd;			/* dma-buf, eventfd */
	uint64_t size;		/* bytes of the object / window / mapping */
	uint32_t flags;		/* create flags, export flags, MR access, prot */
	int kind;		/* enum bufkind (buffers; mappings: of what) */
	int state;		/* enum epstate */
	uint16_t port;		/* listener */
	uint32_t ep, buf;	/* MR: its endpoint and buffer; dma-buf and
				 * mapping: the buffer */
	uint32_t rkey;
	int peer;		/* endpoint: the res of the other end, -1 */
	unsigned int peergen;
	void *addr;		/* mapping, user region */
	uint64_t off;		/* mapping: offset in the buffer */
	int maps;		/* buffer: direct mappings of ours */
	int mrs;		/* buffer, endpoint: MRs of ours */
	int readonly;		/* dma-buf */
	int owner;		/* mappings: the thread that may touch them,
				 * -1 any */
	uint64_t *cookies;	/* endpoint: posted, not reaped (exclusive) */
	int ncookies, capcookies, untracked;
	/* endpoint of a loopback pair: its data buffer, MR and mapping */
	uint32_t data_buf, data_mr, data_rkey;
	uint64_t data_size;
	int data_map;
	unsigned int data_mapgen;
	int zapped;		/* mapping: PTEs dropped (PFN maps SIGBUS) */
	int foreign;		/* dma-buf of another exporter */
	int inherited;		/* a forked child's copy: not counted */
	int node;		/* buffer: numa_node asked for */
};

struct devfd {
	int used;
	unsigned int gen;
	int fd;
	int owner;		/* thread id, -1: shared by all */
	int inuse;		/* calls in progress */
	int closing;
	int tainted;		/* a child used it: no state oracles */
	uint64_t creates;	/* create calls made on it (handle wrap) */
	uint32_t stale[STALE_RING];
	int nstale;
};

struct rng {
	uint64_t s;
};

/* A thread that makes calls, known to the watchdog. */
struct tstate {
	int id;			/* 0..threads-1 workers; helpers above */
	int tid;		/* kernel thread id */
	pthread_t pt;
	uint64_t opno;		/* operations done */
	volatile uint64_t call_start, deadline;	/* ns; 0 outside a call */
	volatile int registered;
	int in_child;
	/* per-thread memory for arguments and arrays */
	uint8_t *arena;		/* ARENA_SIZE bytes, read-write */
	uint8_t *guard;		/* one read-write page, then PROT_NONE */
	uint8_t *ropage;	/* read-only page */
	size_t arena_used;
	char cur[240];		/* the call in progress, for reports */
};

#define ARENA_SIZE	(1 << 20)

/* Statistics and findings, in memory shared by every process of a run. */
struct shared {
	uint64_t seed;
	int stop;
	int code;			/* exit code so far */
	uint64_t calls[NSLOTS], ok[NSLOTS];
	uint32_t err[NSLOTS][ERRSLOTS];
	uint64_t created[R_NTYPES], freed[R_NTYPES];
	uint64_t children, children_killed, must_fail_checked, undoc;
	uint64_t kaddr_checked, interrupts, traffic_checked;
	int nfind;
	uint64_t findkey[MAX_FIND];
	char find[MAX_FIND][768];
	uint64_t suppressed;
	char cur[MAX_TSTATE][240];	/* each thread's call in progress */
	uint64_t cur_ns[MAX_TSTATE];
	int worker_pid;
};

struct options {
	uint64_t seed;
	double duration;
	int threads;
	uint64_t ops;			/* per thread, 0: until duration */
	const char *log;
	const char *spec_file;
	const char *dev_path;
	const char *patterns;
	int hang_secs;
	uint64_t mem_budget;
	int no_fork, no_rdma, shared_module, verbose;
	int check_spec;
};

/* Everything a worker thread shares (process-wide, not across fork). */
struct globals {
	struct options o;
	struct spec spec;
	struct shared *sh;
	pthread_mutex_t lock;		/* pools and devfds */
	struct res res[MAX_RES];
	struct devfd dev[MAX_DEV];
	struct tstate *ts[MAX_TSTATE];
	int nts;
	int log_fd;
	uint64_t start_ns, end_ns;
	char guest_ip[64];
	int have_rdma;			/* rxe or another device is there */
	uint32_t caps, gpu_ready, gpu_sim_devices;
	int nodes_known, node_online[64], nr_nodes, nodes_possible;
	int64_t budget_used;		/* bytes of buffers alive (approx.) */
	int children_alive;
	int in_child;			/* this process is a forked child */
	int child_unpriv;		/* it dropped its capabilities */
	int shared_dev;			/* devfd shared by all threads */
	int cmd_index[SPEC_MAX_CMDS];
	uint64_t max_handles;
	int nres[R_NTYPES];		/* live res per type (under lock) */
	int forks;
};

extern struct globals g;

/* dpfuzz.c */
uint64_t now_ns(void);
uint64_t rnext(struct rng *r);
uint64_t rbelow(struct rng *r, uint64_t n);
int rchance(struct rng *r, unsigned int pct);
struct rng rng_for(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
void logf_(struct tstate *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void finding(struct tstate *t, int code, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void stat_call(int slot, int ret_errno);
void stat_res(int type, int created);
void pool_lock(void);
void pool_unlock(void);
int res_new(int type);			/* locked by the caller */
void res_free(int i);			/* locked by the caller */
int res_pick(struct rng *r, int type, int (*pred)(const struct res *, void *),
	     void *arg, int checkout);	/* -1 when none; takes the lock */
void res_release(int i);		/* clear busy; takes the lock */
int dev_pick(struct tstate *t, struct rng *r);	/* inuse++ */
void dev_release(int d);
int dev_excl(struct tstate *t, int d);	/* state oracles allowed */
int dev_handle_type(int d, uint32_t h);	/* R_* of a live handle, 0 */
int dev_is_stale(int d, uint32_t h);
void dev_mark_stale(int d, uint32_t h);	/* locked by the caller */
int dev_wrapped(int d);
void call_begin(struct tstate *t, uint64_t deadline_ms, const char *what);
void call_end(struct tstate *t);
int touch_guarded(void *addr, size_t len, int write, uint8_t pattern);
struct tstate *tstate_new(int id);
void tstate_free(struct tstate *t);
int cmdi(const char *name);		/* spec command index by name */
void one_op(struct tstate *t, struct rng *r);
int open_dev(int owner);

/* gen.c */
enum { M_VALID, M_ONEBAD, M_CHAOS };

struct uarr {
	const struct spec_field *f;
	uint8_t *p;		/* where the elements start */
	size_t bytes;		/* count * elem size given to the kernel */
	size_t canary;		/* canary bytes after it */
	uint64_t count;
};

struct call {
	struct tstate *t;
	struct rng *r;
	int ci;
	const struct spec_cmd *cmd;
	const struct spec_struct *st;
	int mode, bad_field;
	int dev;		/* devfd index, -1: a raw fd */
	int fd;
	int excl;
	uint8_t buf[ARG_MAX];	/* the struct as generated (ksize bytes) */
	uint8_t in[ARG_MAX];	/* what the kernel sees (usize, zero-filled) */
	uint8_t out[ARG_MAX];	/* the argument after the call */
	int out_valid;
	unsigned int ksize, usize;
	unsigned long req;
	void *argp;
	int argmode;
	int fres[SPEC_MAX_FIELDS];	/* res picked for a field, -1 */
	struct res fcopy[SPEC_MAX_FIELDS];
	char must[512];		/* why the call must fail, "" when it may not */
	int expect;		/* exact errno the call must return, 0 */
	int expect_efault_or_fail; /* read-only argument */
	struct uarr arr[4];
	int narr;
	int co[8];		/* checked-out res to release */
	int nco;
	int ret, err;
	uint64_t deadline_ms;
	int no_log;
	int skip_pre;		/* a composite set every field: no pre hook */
	/* hooks */
	int post_first_bad;	/* POST: first op that must fail, -1 */
	int post_cookie_from;	/* POST: cookies are cookie_base + i */
	uint64_t cookie_base;
	int aux;		/* hook scratch */
	int64_t aux64;
};

void call_init(struct call *c, struct tstate *t, struct rng *r, int ci,
	       int dev, int mode);
void call_generate(struct call *c);
int call_run(struct call *c);	/* generate hooks, classify, call, check */
void call_done(struct call *c);
void must(struct call *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const struct spec_field *cf(const struct call *c, const char *name);
uint64_t fget(const struct call *c, const char *name);
void fset(struct call *c, const char *name, uint64_t v);
uint64_t fget_in(const struct call *c, const char *name); /* as the kernel saw it */
uint64_t fget_out(const struct call *c, const char *name); /* after the call */
uint64_t fld_get(const uint8_t *base, const struct spec_field *f);
void fld_set(uint8_t *base, const struct spec_field *f, uint64_t v);
int fld_signed(const struct spec_field *f);
void *arena_alloc(struct tstate *t, size_t n);
void call_checkout(struct call *c, int res);
int do_cmd(struct tstate *t, struct rng *r, const char *name, int dev,
	   int mode, void (*setup)(struct call *, void *), void *arg,
	   struct call *out);
int op_ioctl(struct tstate *t, struct rng *r);

/* ops.c */
struct hooks {
	void (*pre)(struct call *c);		/* after generation */
	void (*classify)(struct call *c);	/* extra must-fail rules */
	void (*post)(struct call *c);		/* checks and bookkeeping */
};
const struct hooks *hooks_for(const char *cmd);
int op_extra(struct tstate *t, struct rng *r, int op);
const char *op_name(int op);
void ops_init_globals(void);
void worker_orderly_close(void);
int handle_pick(struct call *c, const struct spec_field *f, int *resi);
int fd_pick(struct call *c, const struct spec_field *f, int *resi);

#endif /* DPFUZZ_H */

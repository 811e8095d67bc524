// SPDX-License-Identifier: GPL-2.0
/*
 * kvxfer suite: the disaggregated-inference demo (build/apps/dpinfer) on a
 * loopback connection: decode and prefill are two processes of this
 * guest. Decoded tokens and final logits are bit-identical to the
 * single-process run for several prompt lengths, chunk sizes and both KV
 * types, a second request reuses the connection; a hostile manifest is
 * refused with its reason; a chunk that never arrives is named when the
 * decode side times out; a prefill or decode process killed mid-transfer
 * ends the other side with a clear error and leaves nothing behind; one
 * decode serving connection after connection refuses a hostile peer of
 * every kind with its reason and still serves the good one after them.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "testutil.h"
#include "verbsutil.h"

#define RUN_MS		300000
#define MAX_ARGS	32

static char dpinfer[PATH_MAX], tiny[PATH_MAX];
static const char *ip;
static unsigned int port = 18700;

static bool have_rdma(void)
{
	if (ip && count_rdma_devices() > 0 && !access(dpinfer, X_OK))
		return true;
	ktap_skip("needs soft-RoCE, a guest address and build/apps/dpinfer");
	return false;
}

/* Start dpinfer with @args (NULL-terminated), output to /tmp/kvxfer.<name>. */
static pid_t spawn(const char *name, const char *const *args)
{
	const char *argv[MAX_ARGS] = { dpinfer };
	char out[64];
	pid_t pid;
	int n = 1;

	while (*args && n < MAX_ARGS - 1)
		argv[n++] = *args++;
	snprintf(out, sizeof(out), "/tmp/kvxfer.%s", name);
	/* No stale output from an earlier run may be read as this one's. */
	unlink(out);
	pid = fork();
	if (pid == 0) {
		if (!freopen(out, "w", stdout) || dup2(1, 2) < 0)
			_exit(126);
		execv(dpinfer, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Exit status of @pid, waiting up to @ms; -1 if it had to be killed. */
static int finish(pid_t pid, unsigned int ms)
{
	int status;

	for (unsigned int t = 0; t < ms; t += 50) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static bool output_has(const char *name, const char *text)
{
	char path[64], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/kvxfer.%s", name);
	f = fopen(path, "r");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, text);
	if (f)
		fclose(f);
	return found;
}

static void show(const char *name)
{
	char path[64], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/kvxfer.%s", name);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		printf("# %s: %s", name, line);
	if (f)
		fclose(f);
}

/* Wait for @text in @name's output; false after @ms. */
static bool wait_for(const char *name, const char *text, unsigned int ms)
{
	for (unsigned int t = 0; t < ms; t += 100) {
		if (output_has(name, text))
			return true;
		usleep(100 * 1000);
	}
	return false;
}

struct run {
	const char *decode[MAX_ARGS];
	const char *prefill[MAX_ARGS];
	pid_t dpid, ppid;
	char port[8];
};

/* @argv: dpinfer @cmd on @port, then @args. */
static void run_args(const char **argv, const char *cmd, const char *port,
		     const char *const *args)
{
	const char *base[] = { cmd, "--addr", ip, "--port", port, "--model",
			       tiny };
	int n = 0;

	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		argv[n++] = base[i];
	while (*args)
		argv[n++] = *args++;
	argv[n] = NULL;
}

/* Start decode (@dargs) on a fresh port. */
static void decode_start(struct run *r, const char *const *dargs)
{
	snprintf(r->port, sizeof(r->port), "%u", port++);
	run_args(r->decode, "decode", r->port, dargs);
	r->dpid = spawn("decode", r->decode);
}

/* Start a prefill (@pargs), output to /tmp/kvxfer.<name>, for @r's decode. */
static void prefill_start(struct run *r, const char *name,
			  const char *const *pargs)
{
	run_args(r->prefill, "prefill", r->port, pargs);
	r->ppid = spawn(name, r->prefill);
}

/* Start decode (@dargs) and prefill (@pargs) on a fresh port. */
static void run_start(struct run *r, const char *const *dargs,
		      const char *const *pargs)
{
	decode_start(r, dargs);
	prefill_start(r, "prefill", pargs);
}

/* Run decode and prefill to their end; their exit statuses. */
static void run_both(const char *const *dargs, const char *const *pargs,
		     int *prc, int *drc)
{
	struct run r;

	run_start(&r, dargs, pargs);
	*prc = finish(r.ppid, RUN_MS);
	*drc = finish(r.dpid, RUN_MS);
}

/* After a failed check: both sides' output, for the log. */
static void show_if_failed(void)
{
	if (ktap_case_failed()) {
		show("prefill");
		show("decode");
	}
}

static void nothing_left(void)
{
	KTAP_EXPECT(counter_settled("endpoints", 0) == 0 &&
		    counter_settled("mrs", 0) == 0 &&
		    counter_settled("buffers", 0) == 0,
		    "left behind: %" PRIu64 " endpoints, %" PRIu64 " MRs, %" PRIu64 " buffers",
		    dmaplane_counter("endpoints"), dmaplane_counter("mrs"),
		    dmaplane_counter("buffers"));
}

/* One decode/prefill pair that must succeed bit-identically. */
static void identical(const char *prompt_len, const char *chunk,
		      const char *kv, const char *requests)
{
	const char *dargs[] = { "--requests", requests, "--region", "1M", NULL };
	const char *pargs[] = { "--prompt-len", prompt_len, "--chunk", chunk,
				"--kv", kv, "--requests", requests,
				"--generate", "8", NULL };
	int prc, drc;

	run_both(dargs, pargs, &prc, &drc);
	KTAP_EXPECT(prc == 0 && drc == 0 &&
		    output_has("prefill",
			       "verdict: bit-identical to the single-process run"),
		    "prompt %s, chunk %s, %s, %s requests: prefill %d, decode %d",
		    prompt_len, chunk, kv, requests, prc, drc);
	KTAP_EXPECT(output_has("decode", "at the region's mapping") &&
		    output_has("decode", "no copy"),
		    "decode did not read its views in place");
	show_if_failed();
}

static void decode_is_bit_identical(void)
{
	if (!have_rdma())
		return;
	identical("2", "64K", "fp32", "1");
	identical("33", "64K", "fp16", "1");
	identical("130", "128K", "fp32", "1");
	identical("70", "64K", "fp16", "1");
	nothing_left();
}

/* A second request on the same connection and region. */
static void second_request_reuses(void)
{
	if (!have_rdma())
		return;
	identical("40", "64K", "fp32", "2");
	KTAP_EXPECT(output_has("prefill", "request 2:") &&
		    output_has("decode", "request 2:"),
		    "no second request");
	nothing_left();
}

static void hostile_manifest_refused(void)
{
	const char *dargs[] = { "--region", "1M", NULL };
	const char *pargs[] = { "--prompt-len", "16", "--hostile",
				"manifest-huge-region", NULL };
	int prc, drc;

	if (!have_rdma())
		return;
	run_both(dargs, pargs, &prc, &drc);
	KTAP_EXPECT(prc == 1 && drc == 1 &&
		    output_has("decode", "manifest refused: ") &&
		    output_has("prefill", "decode refused the request: "),
		    "prefill %d, decode %d", prc, drc);
	show_if_failed();
	nothing_left();
}

static void missing_chunk_is_named(void)
{
	const char *dargs[] = { "--region", "1M", "--timeout-ms", "5000",
				NULL };
	const char *pargs[] = { "--prompt-len", "40", "--chunk", "64K",
				"--drop-chunk", "1", NULL };
	int prc, drc;

	if (!have_rdma())
		return;
	run_both(dargs, pargs, &prc, &drc);
	KTAP_EXPECT(prc == 1 && drc == 1 &&
		    output_has("decode", "timed out after 5000 ms: missing 1 of 4 chunks: 1 (layer 0 V)"),
		    "prefill %d, decode %d", prc, drc);
	KTAP_EXPECT(output_has("prefill", "decode failed"),
		    "the prefill side was not told");
	show_if_failed();
	nothing_left();
}

/* Kill one side while the prefill pauses after 2 of 4 chunks. */
static void killed_mid_transfer(bool kill_prefill)
{
	const char *dargs[] = { "--region", "1M", NULL };
	const char *pargs[] = { "--prompt-len", "40", "--chunk", "64K",
				"--pause-after", "2", "--no-overlap", NULL };
	const char *survivor = kill_prefill ? "decode" : "prefill";
	struct run r;
	int rc;

	run_start(&r, dargs, pargs);
	KTAP_EXPECT(wait_for("prefill", "pausing after 2 chunks", RUN_MS),
		    "the prefill never paused");
	kill(kill_prefill ? r.ppid : r.dpid, SIGKILL);
	finish(kill_prefill ? r.ppid : r.dpid, RUN_MS);
	rc = finish(kill_prefill ? r.dpid : r.ppid, RUN_MS);
	KTAP_EXPECT(rc == 1 && output_has(survivor, "failed"),
		    "%s exited %d", survivor, rc);
	if (kill_prefill)
		KTAP_EXPECT(output_has("decode", "missing 2 of 4 chunks"),
			    "decode did not name the missing chunks");
	show_if_failed();
	nothing_left();
}

static void prefill_killed(void)
{
	if (have_rdma())
		killed_mid_transfer(true);
}

static void decode_killed(void)
{
	if (have_rdma())
		killed_mid_transfer(false);
}

/*
 * Every --hostile kind and the reason the decode gives for it (tiny, 16
 * prompt tokens: a 192-byte manifest, 4 chunks).
 */
static const struct {
	const char *kind, *reason;
} hostile[] = {
	{ "manifest-huge-region",
	  "region of 4611686018427387904 bytes is larger than the receiver's" },
	{ "manifest-many-chunks",
	  "manifest says 1073741823 chunks, the plan has 4" },
	{ "manifest-short", "manifest is 191 bytes, 2 layers need 192" },
	{ "imm-past-end", "immediate 0x00000004: no such chunk" },
	{ "imm-duplicate", "immediate 0x00000000: a duplicate" },
	{ "imm-reserved", "immediate 0x80000000: not a chunk or a marker" },
};

#define N_HOSTILE	(sizeof(hostile) / sizeof(hostile[0]))

/*
 * One decode serves a hostile prefill of every kind, one after another,
 * then a good one: each hostile one is refused with its reason and the
 * decode goes on; the good one is bit-identical. Each prefill starts once
 * the one before it has exited; the decode's listener stays open, so it
 * waits there until the decode is done with the last connection (and
 * dials again if that takes longer than a connect may wait).
 */
static void hostile_peers_then_good(void)
{
	char conns[8], name[N_HOSTILE][40], said[256];
	const char *dargs[] = { "--region", "1M", "--connections", conns,
				NULL };
	const char *good[] = { "--prompt-len", "16", "--generate", "8", NULL };
	int rc[N_HOSTILE], prc = -1, drc;
	struct run r;

	if (!have_rdma())
		return;
	snprintf(conns, sizeof(conns), "%zu", N_HOSTILE + 1);
	decode_start(&r, dargs);
	for (size_t i = 0; i < N_HOSTILE; i++) {
		const char *pargs[] = { "--prompt-len", "16", "--hostile",
					hostile[i].kind, NULL };

		snprintf(name[i], sizeof(name[i]), "hostile-%s",
			 hostile[i].kind);
		rc[i] = -1;
		/* One had to be killed: the decode serves no more. */
		if (i && rc[i - 1] < 0)
			continue;
		prefill_start(&r, name[i], pargs);
		rc[i] = finish(r.ppid, RUN_MS);
	}
	if (rc[N_HOSTILE - 1] >= 0) {
		prefill_start(&r, "prefill", good);
		prc = finish(r.ppid, RUN_MS);
	}
	drc = finish(r.dpid, RUN_MS);
	for (size_t i = 0; i < N_HOSTILE; i++) {
		bool ok;

		snprintf(said, sizeof(said), "connection %zu: refused: %s",
			 i + 1, hostile[i].reason);
		ok = rc[i] == 1 && output_has(name[i], hostile[i].reason) &&
		     output_has("decode", said);
		KTAP_EXPECT(ok, "%s: prefill exited %d; both say \"%s\"?",
			    hostile[i].kind, rc[i], said);
		if (!ok)
			show(name[i]);
	}
	KTAP_EXPECT(prc == 0 &&
		    output_has("prefill",
			       "verdict: bit-identical to the single-process run"),
		    "the good prefill after them exited %d", prc);
	snprintf(said, sizeof(said),
		 "served %zu connections: 1 ok, %zu refused", N_HOSTILE + 1,
		 N_HOSTILE);
	KTAP_EXPECT(drc == 1 && output_has("decode", said),
		    "decode exited %d; wanted \"%s\"", drc, said);
	show_if_failed();
	nothing_left();
}

static void setup(void)
{
	repo_path(dpinfer, sizeof(dpinfer), "build/apps/dpinfer");
	repo_path(tiny, sizeof(tiny), "fixtures/models/tiny.conf");
	ip = getenv("DP_GUEST_IP");
}

static const struct ktap_case cases[] = {
	KTAP_CASE(setup),
	KTAP_CASE(decode_is_bit_identical),
	KTAP_CASE(second_request_reuses),
	KTAP_CASE(hostile_manifest_refused),
	KTAP_CASE(missing_chunk_is_named),
	KTAP_CASE(prefill_killed),
	KTAP_CASE(decode_killed),
	KTAP_CASE(hostile_peers_then_good),
};

int main(void)
{
	return ktap_run_suite("kvxfer", cases, sizeof(cases) / sizeof(cases[0]));
}

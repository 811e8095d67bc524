// SPDX-License-Identifier: GPL-2.0
/*
 * kvxfer suite: the disaggregated-inference demo (build/apps/dpinfer) on a
 * loopback connection: decode and prefill are two processes of this
 * guest. Decoded tokens and final logits are bit-identical to the
 * single-process run for several prompt lengths, chunk sizes and both KV
 * types, a second request reuses the connection; a hostile manifest is
 * refused with its reason; a chunk that never arrives is named when the
 * decode side times out; a prefill or decode process killed mid-transfer
 * ends the other side with a clear error and leaves nothing behind.
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

/* Start decode (@dargs) and prefill (@pargs) on a fresh port. */
static void run_start(struct run *r, const char *const *dargs,
		      const char *const *pargs)
{
	const char *base[] = { "--addr", ip, "--port", r->port, "--model",
			       tiny };
	int n = 0, m = 0;

	snprintf(r->port, sizeof(r->port), "%u", port++);
	r->decode[n++] = "decode";
	r->prefill[m++] = "prefill";
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		r->decode[n++] = base[i];
		r->prefill[m++] = base[i];
	}
	while (*dargs)
		r->decode[n++] = *dargs++;
	while (*pargs)
		r->prefill[m++] = *pargs++;
	r->decode[n] = NULL;
	r->prefill[m] = NULL;
	r->dpid = spawn("decode", r->decode);
	r->ppid = spawn("prefill", r->prefill);
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
	const char *pargs[] = { "--prompt-len", "16", "--corrupt-manifest",
				NULL };
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
};

int main(void)
{
	return ktap_run_suite("kvxfer", cases, sizeof(cases) / sizeof(cases[0]));
}

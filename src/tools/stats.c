// SPDX-License-Identifier: GPL-2.0
/*
 * dmaplanectl stats / top: the module's counters and every endpoint's
 * traffic, flow control and latency, from debugfs.
 *
 *   stats [--json]                      one snapshot
 *   top [--interval-ms N] [--count N]   rates, refreshed every interval
 *
 * /sys/kernel/debug/dmaplane/info holds "key: value" lines (module-wide
 * counters); .../endpoints one line per endpoint of space-separated
 * "key=value" pairs, e.g.
 *
 *   id=3 state=connected credits=on window=64 credits_avail=12 ...
 *   lat_p50_ns=2047 lat_p99_ns=16383 lat_hist=10:5,11:100,14:3
 *
 * where lat_hist lists the nonzero log2 buckets as k:count (bucket k
 * holds latencies in [2^(k-1), 2^k) ns, bucket 0 is 0 ns; "-" when
 * empty). Both files are parsed generically: every key goes into the
 * JSON, keys a table does not show are ignored, and a key a module does
 * not print shows as "-".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmaplanectl.h"

#define DEBUGFS_DIR	"/sys/kernel/debug/dmaplane"
#define INFO_PATH	DEBUGFS_DIR "/info"
#define ENDPOINTS_PATH	DEBUGFS_DIR "/endpoints"
#define KV_MAX		64

/* One record's key/value pairs, pointing into the text it was read from. */
struct kvs {
	int n;
	const char *key[KV_MAX];
	const char *val[KV_MAX];
};

/* Both files at one moment. */
struct snapshot {
	double t;
	char *info_text, *eps_text;
	struct kvs info;
	struct kvs *eps;
	int nr_eps;
};

/* The whole of a (seq_file) debugfs file, NUL-terminated; -errno. */
static int read_text(const char *path, char **text)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 4096;
	char *buf = NULL, *more;
	int ret = 0;

	if (!f)
		return -errno;
	for (;; cap *= 2) {
		more = realloc(buf, cap);
		if (!more) {
			ret = -ENOMEM;
			break;
		}
		buf = more;
		len += fread(buf + len, 1, cap - len - 1, f);
		if (len < cap - 1)
			break;
	}
	if (!ret && ferror(f))
		ret = -EIO;
	fclose(f);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[len] = '\0';
	*text = buf;
	return 0;
}

static void kvs_add(struct kvs *k, const char *key, const char *val)
{
	if (k->n < KV_MAX) {
		k->key[k->n] = key;
		k->val[k->n++] = val;
	}
}

/* "key: value" lines into @k. */
static void parse_info(char *text, struct kvs *k)
{
	char *save, *line;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		*colon++ = '\0';
		kvs_add(k, line, colon + strspn(colon, " \t"));
	}
}

/* One line of "key=value" tokens into @k; a bare token has value "". */
static void parse_pairs(char *line, struct kvs *k)
{
	char *save, *tok;

	for (tok = strtok_r(line, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		kvs_add(k, tok, eq ? eq : "");
	}
}

/* One struct kvs per nonempty line of @text. */
static int parse_endpoints(char *text, struct kvs **eps, int *n)
{
	char *save, *line;
	int lines = 1;

	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	*eps = calloc(lines, sizeof(**eps));
	if (!*eps)
		return -ENOMEM;
	*n = 0;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		parse_pairs(line, &(*eps)[(*n)++]);
	return 0;
}

static const char *kvs_get(const struct kvs *k, const char *key)
{
	for (int i = 0; i < k->n; i++)
		if (!strcmp(k->key[i], key))
			return k->val[i];
	return NULL;
}

/* A decimal (or 0x hex) value of @key; false when absent or not one. */
static bool kvs_u64(const struct kvs *k, const char *key, uint64_t *v)
{
	const char *s = kvs_get(k, key);
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	*v = strtoull(s, &end, 0);
	return !*end;
}

/* The endpoint of @s whose id is @id, or NULL. */
static const struct kvs *find_ep(const struct snapshot *s, const char *id)
{
	for (int i = 0; id && i < s->nr_eps; i++) {
		const char *other = kvs_get(&s->eps[i], "id");

		if (other && !strcmp(other, id))
			return &s->eps[i];
	}
	return NULL;
}

static void snapshot_free(struct snapshot *s)
{
	free(s->info_text);
	free(s->eps_text);
	free(s->eps);
	memset(s, 0, sizeof(*s));
}

static int debugfs_fail(const char *path, int err, bool have_info)
{
	if (err != -ENOENT)
		return fail(path, err);
	fprintf(stderr, "dmaplanectl: %s: %s\n", path, have_info ?
		"not found: the loaded module has no endpoint statistics" :
		"debugfs not mounted or module not loaded");
	return 1;
}

/* Read and parse both files; prints why and returns 1 when it cannot. */
static int snapshot_take(struct snapshot *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	ret = read_text(INFO_PATH, &s->info_text);
	if (ret)
		return debugfs_fail(INFO_PATH, ret, false);
	ret = read_text(ENDPOINTS_PATH, &s->eps_text);
	if (ret) {
		snapshot_free(s);
		return debugfs_fail(ENDPOINTS_PATH, ret, true);
	}
	s->t = now_ns();
	parse_info(s->info_text, &s->info);
	if (parse_endpoints(s->eps_text, &s->eps, &s->nr_eps)) {
		snapshot_free(s);
		return fail("stats", -ENOMEM);
	}
	return 0;
}

/* ---- JSON ---- */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A decimal integer prints as a number, 0x hex as its decimal value. */
static void json_value(FILE *f, const char *v)
{
	const char *digits = v + (*v == '-');
	char *end;

	if (*digits && strspn(digits, "0123456789") == strlen(digits)) {
		fputs(v, f);
		return;
	}
	if (!strncmp(v, "0x", 2) && v[2]) {
		unsigned long long x = strtoull(v, &end, 16);

		if (!*end) {
			fprintf(f, "%llu", x);
			return;
		}
	}
	json_string(f, v);
}

/* The next "k:count" of a lat_hist value at *@p, moving past it. */
static bool hist_next(const char **p, unsigned int *k,
		      unsigned long long *count)
{
	int used = 0;

	if (sscanf(*p, "%u:%llu%n", k, count, &used) != 2 || *k > 63 ||
	    ((*p)[used] && (*p)[used] != ','))
		return false;
	*p += used + ((*p)[used] == ',');
	return true;
}

/*
 * "10:5,11:100" as [{"bucket": 10, "lo_ns": 512, "hi_ns": 1024,
 * "count": 5}, ...], "-" as []; anything else stays a string.
 */
static void json_hist(FILE *f, const char *v)
{
	const char *empty = strcmp(v, "-") ? v : "", *p = empty, *sep = "";
	unsigned long long count;
	unsigned int k;

	while (*p && hist_next(&p, &k, &count))
		;
	if (*p) {
		json_string(f, v);
		return;
	}
	fputc('[', f);
	for (p = empty; *p && hist_next(&p, &k, &count); sep = ", ")
		fprintf(f, "%s{\"bucket\": %u, \"lo_ns\": %llu, \"hi_ns\": %llu, "
			"\"count\": %llu}", sep, k,
			k ? 1ULL << (k - 1) : 0ULL, 1ULL << k, count);
	fputc(']', f);
}

static void json_kvs(FILE *f, const struct kvs *k)
{
	fputc('{', f);
	for (int i = 0; i < k->n; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_string(f, k->key[i]);
		fputs(": ", f);
		if (!strcmp(k->key[i], "lat_hist"))
			json_hist(f, k->val[i]);
		else
			json_value(f, k->val[i]);
	}
	fputc('}', f);
}

/* ---- tables ---- */

/* What a column shows of an endpoint's key. */
enum col_kind {
	COL_RAW,	/* the value as printed */
	COL_NS_MS,	/* ns as ms */
	COL_NS_US,	/* ns as us */
	COL_RATE,	/* change per second since the last sample */
	COL_RATE_MB,	/* bytes: MB per second since the last sample */
};

struct column {
	const char *title;
	const char *key;
	int width;		/* negative: left-aligned */
	enum col_kind kind;
};

static const struct column stats_cols[] = {
	{ "id", "id", 4, COL_RAW },
	{ "state", "state", -12, COL_RAW },
	{ "credits", "credits", 7, COL_RAW },
	{ "window", "window", 6, COL_RAW },
	{ "avail", "credits_avail", 6, COL_RAW },
	{ "peer", "peer_credits", 6, COL_RAW },
	{ "queued", "queued", 6, COL_RAW },
	{ "inflight", "inflight", 8, COL_RAW },
	{ "ops", "ops", 10, COL_RAW },
	{ "bytes", "bytes", 14, COL_RAW },
	{ "errors", "errors", 6, COL_RAW },
	{ "stalls", "stalls", 8, COL_RAW },
	{ "stall_ms", "stall_ns", 9, COL_NS_MS },
	{ "p50_us", "lat_p50_ns", 8, COL_NS_US },
	{ "p99_us", "lat_p99_ns", 8, COL_NS_US },
	{ "p99.9_us", "lat_p999_ns", 9, COL_NS_US },
};

static const struct column top_cols[] = {
	{ "id", "id", 4, COL_RAW },
	{ "state", "state", -12, COL_RAW },
	{ "ops/s", "ops", 10, COL_RATE },
	{ "MB/s", "bytes", 9, COL_RATE_MB },
	{ "stalls/s", "stalls", 9, COL_RATE },
	{ "avail", "credits_avail", 6, COL_RAW },
	{ "peer", "peer_credits", 6, COL_RAW },
	{ "queued", "queued", 6, COL_RAW },
	{ "inflight", "inflight", 8, COL_RAW },
	{ "p50_us", "lat_p50_ns", 8, COL_NS_US },
	{ "p99_us", "lat_p99_ns", 8, COL_NS_US },
};

#define NR_COLS(cols) (sizeof(cols) / sizeof((cols)[0]))

static void print_header(FILE *f, const struct column *cols, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%*s", i ? " " : "", cols[i].width, cols[i].title);
	fputc('\n', f);
}

/*
 * Column @col of record @cur into @out; rates against @prev over @dt
 * seconds ("-" without an earlier sample of the same record).
 */
static void format_cell(char *out, size_t len, const struct column *col,
			const struct kvs *cur, const struct kvs *prev,
			double dt)
{
	const char *raw = kvs_get(cur, col->key);
	uint64_t v, was;

	snprintf(out, len, "-");
	if (col->kind == COL_RAW) {
		if (raw && *raw)
			snprintf(out, len, "%s", raw);
		return;
	}
	if (!kvs_u64(cur, col->key, &v))
		return;
	switch (col->kind) {
	case COL_NS_MS:
		snprintf(out, len, "%.3f", v / 1e6);
		break;
	case COL_NS_US:
		snprintf(out, len, "%.1f", v / 1e3);
		break;
	case COL_RATE:
	case COL_RATE_MB:
		if (!prev || dt <= 0 || !kvs_u64(prev, col->key, &was) ||
		    was > v)
			break;
		snprintf(out, len, col->kind == COL_RATE ? "%.0f" : "%.1f",
			 (v - was) / dt / (col->kind == COL_RATE ? 1 : 1e6));
		break;
	default:
		break;
	}
}

static void print_row(FILE *f, const struct column *cols, size_t n,
		      const struct kvs *cur, const struct kvs *prev, double dt)
{
	char cell[64];

	for (size_t i = 0; i < n; i++) {
		format_cell(cell, sizeof(cell), &cols[i], cur, prev, dt);
		fprintf(f, "%s%*s", i ? " " : "", cols[i].width, cell);
	}
	fputc('\n', f);
}

/* ---- stats ---- */

static void stats_json(FILE *f, const struct snapshot *s)
{
	fprintf(f, "{\"module\": ");
	json_kvs(f, &s->info);
	fprintf(f, ", \"endpoints\": [");
	for (int i = 0; i < s->nr_eps; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_kvs(f, &s->eps[i]);
	}
	fprintf(f, "]}\n");
}

static void stats_table(FILE *f, const struct snapshot *s)
{
	for (int i = 0; i < s->info.n; i++)
		fprintf(f, "%-22s %s\n", s->info.key[i], s->info.val[i]);
	fprintf(f, "\n%d endpoint%s\n", s->nr_eps, s->nr_eps == 1 ? "" : "s");
	if (!s->nr_eps)
		return;
	print_header(f, stats_cols, NR_COLS(stats_cols));
	for (int i = 0; i < s->nr_eps; i++)
		print_row(f, stats_cols, NR_COLS(stats_cols), &s->eps[i], NULL,
			  0);
}

int cmd_stats(const struct options *o)
{
	struct snapshot s;

	if (snapshot_take(&s))
		return 1;
	if (o->js)
		stats_json(o->js, &s);
	if (o->tbl)
		stats_table(o->tbl, &s);
	snapshot_free(&s);
	return 0;
}

/* ---- top ---- */

/* Time, endpoints and module-wide rates (ops_posted, op_bytes). */
static void top_header(const struct snapshot *cur, const struct snapshot *prev)
{
	static const struct column rates[] = {
		{ "ops/s", "ops_posted", 0, COL_RATE },
		{ "MB/s", "op_bytes", 0, COL_RATE_MB },
	};
	double dt = prev ? (cur->t - prev->t) / 1e9 : 0;
	time_t now = time(NULL);
	char clock[16], cell[64];

	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&now));
	printf("dmaplane top - %s, %d endpoint%s", clock, cur->nr_eps,
	       cur->nr_eps == 1 ? "" : "s");
	for (size_t i = 0; i < NR_COLS(rates); i++) {
		format_cell(cell, sizeof(cell), &rates[i], &cur->info,
			    prev ? &prev->info : NULL, dt);
		printf(", %s %s", rates[i].title, cell);
	}
	printf("\n\n");
}

static void top_print(const struct snapshot *cur, const struct snapshot *prev,
		      bool tty)
{
	double dt = prev ? (cur->t - prev->t) / 1e9 : 0;
	int gone = 0;

	if (tty)
		printf("\033[H\033[2J");
	top_header(cur, prev);
	print_header(stdout, top_cols, NR_COLS(top_cols));
	for (int i = 0; i < cur->nr_eps; i++)
		print_row(stdout, top_cols, NR_COLS(top_cols), &cur->eps[i],
			  prev ? find_ep(prev, kvs_get(&cur->eps[i], "id")) :
				 NULL, dt);
	for (int i = 0; prev && i < prev->nr_eps; i++) {
		const char *id = kvs_get(&prev->eps[i], "id");

		if (id && !find_ep(cur, id))
			printf("%s%s", gone++ ? ", " : "gone: ", id);
	}
	printf("%s%s", gone ? "\n" : "", tty ? "" : "\n");
	fflush(stdout);
}

int cmd_top(const struct options *o)
{
	struct snapshot prev = { 0 }, cur;
	bool tty = isatty(STDOUT_FILENO);
	struct timespec pause = {
		.tv_sec = o->interval_ms / 1000,
		.tv_nsec = (o->interval_ms % 1000) * 1000000L,
	};

	for (uint32_t i = 0; !o->count || i < o->count; i++) {
		if (i)
			nanosleep(&pause, NULL);
		if (snapshot_take(&cur)) {
			snapshot_free(&prev);
			return 1;
		}
		top_print(&cur, i ? &prev : NULL, tty);
		snapshot_free(&prev);
		prev = cur;
	}
	snapshot_free(&prev);
	return 0;
}

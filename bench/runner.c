/* bench/runner.c: spawn commands interleaved and time each run, start to exit.
 *
 * Why C and not hyperfine or Python: the quantities compared here are ~1 ms process
 * lifetimes, so the spawner must add as little as possible (posix_spawn, no shell) and
 * must interleave the commands run by run, so that noise from other work on the machine
 * lands on every command alike and the ratios stay meaningful.
 *
 * Usage:
 *   runner times SPEC RUNS WARMUP OUT.json
 *       Every round runs each command of SPEC once (rotating the order per round);
 *       WARMUP rounds first are not recorded. Writes per-command median, p95, mean,
 *       min (milliseconds), the median over rounds of its time divided by the first
 *       command's time in the same round, median peak RSS (KiB), median minor page
 *       faults and how many runs exited with an unexpected code.
 *   runner burst SPEC N OUTDIR
 *       Starts N copies of SPEC's first command at once, waits for all; prints
 *       {"wall_ms":..,"failed":..} and leaves each child's stdout in OUTDIR/<i>.out.
 *
 * SPEC: blocks separated by blank lines, one directive per line:
 *   name NAME            label in the output
 *   arg  ARG             argv, in order (first is the program path)
 *   env  KEY=VALUE       the whole environment (nothing is inherited)
 *   stdin PATH           file on stdin (default /dev/null)
 *   expect CODE          expected exit code (default 0)
 *   clean DIR PREFIX     before every run (untimed), delete DIR/PREFIX* files
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXCMD 32
#define MAXV 64

struct cmd {
    char *name;
    char *argv[MAXV + 1];
    int argc;
    char *envp[MAXV + 1];
    int envc;
    char *stdin_path;
    int expect;
    char *clean_dir, *clean_prefix;
    double *ms;
    long *rss, *minflt;
    int n, fails;
};

static struct cmd cmds[MAXCMD];
static int ncmd;

static void die(const char *what) {
    fprintf(stderr, "runner: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void parse(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    char line[4096];
    struct cmd *c = NULL;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) { c = NULL; continue; }
        if (!c) {
            if (ncmd == MAXCMD) { fprintf(stderr, "runner: too many commands\n"); exit(2); }
            c = &cmds[ncmd++];
            memset(c, 0, sizeof *c);
            c->stdin_path = "/dev/null";
        }
        char *sp = strchr(line, ' ');
        char *val = sp ? strdup(sp + 1) : strdup("");
        if (sp) *sp = 0;
        if (!strcmp(line, "name")) c->name = val;
        else if (!strcmp(line, "arg") && c->argc < MAXV) c->argv[c->argc++] = val;
        else if (!strcmp(line, "env") && c->envc < MAXV) c->envp[c->envc++] = val;
        else if (!strcmp(line, "stdin")) c->stdin_path = val;
        else if (!strcmp(line, "expect")) c->expect = atoi(val);
        else if (!strcmp(line, "clean")) {
            char *p = strchr(val, ' ');
            if (!p) { fprintf(stderr, "runner: clean DIR PREFIX\n"); exit(2); }
            *p = 0;
            c->clean_dir = val;
            c->clean_prefix = p + 1;
        } else { fprintf(stderr, "runner: unknown directive %s\n", line); exit(2); }
    }
    fclose(f);
}

static void clean(struct cmd *c) {
    if (!c->clean_dir) return;
    DIR *d = opendir(c->clean_dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, c->clean_prefix, strlen(c->clean_prefix))) continue;
        snprintf(p, sizeof p, "%s/%s", c->clean_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static pid_t spawn(struct cmd *c, const char *out_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, c->stdin_path, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, c->envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) { errno = rc; die(c->argv[0]); }
    return pid;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One timed run; returns the exit code (or 128+signal), fills rss in KiB and the
 * minor page faults. */
static int run_once(struct cmd *c, double *ms, long *rss, long *minflt) {
    clean(c);
    double t0 = now_ms();
    pid_t pid = spawn(c, NULL);
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) die("wait4");
    *ms = now_ms() - t0;
    *rss = ru.ru_maxrss;
    *minflt = ru.ru_minflt;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int cmp_l(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static double quantile(double *s, int n, double q) {
    /* nearest-rank on sorted data */
    int i = (int)(q * n + 0.999999) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return s[i];
}

static int times(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: runner times SPEC RUNS WARMUP OUT.json\n"); return 2; }
    parse(argv[2]);
    int runs = atoi(argv[3]), warm = atoi(argv[4]);
    for (int i = 0; i < ncmd; i++) {
        cmds[i].ms = calloc(runs, sizeof(double));
        cmds[i].rss = calloc(runs, sizeof(long));
        cmds[i].minflt = calloc(runs, sizeof(long));
    }
    for (int r = -warm; r < runs; r++) {
        for (int k = 0; k < ncmd; k++) {
            /* rotate so no command always follows the same neighbour */
            struct cmd *c = &cmds[(k + (r < 0 ? -r : r)) % ncmd];
            double ms;
            long rss, minflt;
            int code = run_once(c, &ms, &rss, &minflt);
            if (r < 0) {
                if (code != c->expect) {
                    fprintf(stderr, "runner: `%s` exited %d during warm-up, expected %d\n",
                            c->name, code, c->expect);
                    return 1;
                }
                continue;
            }
            if (code != c->expect) c->fails++;
            c->ms[c->n] = ms;
            c->rss[c->n] = rss;
            c->minflt[c->n] = minflt;
            c->n++;
        }
    }
    FILE *o = fopen(argv[5], "w");
    if (!o) die(argv[5]);
    /* Paired ratio: each run against the first command's run in the same round (they
     * ran moments apart), then the median over rounds. Less sensitive than a ratio of
     * medians to load that comes and goes during the run. */
    double *paired = calloc(runs, sizeof(double));
    double *ratio = calloc(ncmd, sizeof(double));
    for (int i = 0; i < ncmd; i++) {
        for (int j = 0; j < runs; j++) paired[j] = cmds[i].ms[j] / cmds[0].ms[j];
        qsort(paired, runs, sizeof(double), cmp_d);
        ratio[i] = quantile(paired, runs, 0.5);
    }
    fprintf(o, "{\n");
    for (int i = 0; i < ncmd; i++) {
        struct cmd *c = &cmds[i];
        double sum = 0;
        for (int j = 0; j < c->n; j++) sum += c->ms[j];
        qsort(c->ms, c->n, sizeof(double), cmp_d);
        qsort(c->rss, c->n, sizeof(long), cmp_l);
        qsort(c->minflt, c->n, sizeof(long), cmp_l);
        fprintf(o,
                "  \"%s\": {\"runs\": %d, \"median_ms\": %.4f, \"p95_ms\": %.4f, "
                "\"mean_ms\": %.4f, \"min_ms\": %.4f, \"paired_ratio_to_first\": %.4f, "
                "\"max_rss_kib\": %ld, \"minor_faults\": %ld, \"unexpected_exit\": %d}%s\n",
                c->name, c->n, quantile(c->ms, c->n, 0.5), quantile(c->ms, c->n, 0.95),
                sum / c->n, c->ms[0], ratio[i], c->rss[c->n / 2], c->minflt[c->n / 2], c->fails, i + 1 < ncmd ? "," : "");
    }
    fprintf(o, "}\n");
    fclose(o);
    return 0;
}

static int burst(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: runner burst SPEC N OUTDIR\n"); return 2; }
    parse(argv[2]);
    int n = atoi(argv[3]);
    struct cmd *c = &cmds[0];
    clean(c);
    pid_t *pids = calloc(n, sizeof(pid_t));
    char path[4096];
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%d.out", argv[4], i);
        pids[i] = spawn(c, path);
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0) die("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != c->expect) failed++;
    }
    printf("{\"wall_ms\": %.3f, \"failed\": %d}\n", now_ms() - t0, failed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "times")) return times(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "burst")) return burst(argc, argv);
    fprintf(stderr, "usage: runner times SPEC RUNS WARMUP OUT.json | runner burst SPEC N OUTDIR\n");
    return 2;
}

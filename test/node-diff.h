/* Differential testing against the real node, shared by test-block-list.c,
 * test-socket-address.c (node optional) and test-encoding.c (node
 * required):
 *
 *   text_t ops = {0}, mine = {0}, theirs;
 *   ... text_add(&ops, "[\"check\",4,\"1.2.3.4\"]\n"); text_add(&mine, ...);
 *   theirs = node_replay("blocklist-diff.js", &ops, NULL);
 *   bad = node_diff_lines("BlockList", "operation", &ops, &mine, &theirs,
 *                         count, 10);
 *
 * cnet's answers and a script under test/node/ (which replays the same
 * inputs in one node process) each give one line per input; node's output
 * starts with its version line.
 *
 * Helpers: text_t, a growable text (text_reserve, text_put, text_add as
 * printf, text_json as JSON.stringify, text_free); node_path (CNET_NODE,
 * else "node" on the PATH); node_script (test/node/<name>); run_node
 * (fork + exec, standard output into a text_t); node_replay (input in a
 * temporary file, node on it, fails the case unless node exits 0);
 * node_diff_lines (line-by-line comparison; the first disagreements
 * printed). For tests whose differential cases skip without node:
 * node_diff_main (harness.h's main, included with main renamed to
 * harness_main, then exit 77 if everything passed but node could not be
 * run) and node_missing (in a case: says SKIP and returns true then).
 *
 * With NODE_DIFF_ADDRESSES defined before the include, also a fixed-seed
 * random IP address generator (test-block-list.c, test-socket-address.c):
 * rng_state / rng_next / below (splitmix64), seed (an environment variable
 * or a fallback), ip16_t (IPv4 in mapped form), random_base, near (a
 * neighbour across a boundary), mutate (damage), text_v4, text_v6 (any
 * spelling) and spell (text and family, sometimes wrong on purpose).
 *
 * Include it once, after harness.h: like harness.h, everything here is
 * static.
 */
#ifndef CNET_TEST_NODE_DIFF_H
#define CNET_TEST_NODE_DIFF_H

#ifndef CNET_TEST_HARNESS_H
#error "include harness.h before node-diff.h"
#endif

#include <fcntl.h>
#include <stdint.h>

/* ---- a growable text ----------------------------------------------------- */

typedef struct {
  char *s; /* NUL-terminated once anything was added */
  size_t len, cap;
} text_t;

/* Room for more bytes and the NUL. */
HARNESS_FN void text_reserve(text_t *t, size_t more) {
  if (t->len + more + 1 <= t->cap)
    return;
  while (t->len + more + 1 > t->cap)
    t->cap = t->cap != 0 ? t->cap * 2 : 4096;
  t->s = realloc(t->s, t->cap);
  ASSERT_NOT_NULL(t->s);
}

HARNESS_FN void text_put(text_t *t, const char *s, size_t n) {
  text_reserve(t, n);
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void text_add(text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));

static void text_add(text_t *t, const char *fmt, ...) {
  va_list ap;
  int n;

  text_reserve(t, 0);
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    ASSERT_GE(n, 0);
    if ((size_t)n < t->cap - t->len)
      break;
    text_reserve(t, (size_t)n);
  }
  t->len += (size_t)n;
}

/* A string as JSON.stringify writes it (the texts here are ASCII). */
HARNESS_FN void text_json(text_t *t, const char *s) {
  text_add(t, "\"");
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;

    if (c == '"' || c == '\\')
      text_add(t, "\\%c", c);
    else if (c == '\n')
      text_add(t, "\\n");
    else if (c == '\t')
      text_add(t, "\\t");
    else if (c == '\r')
      text_add(t, "\\r");
    else if (c == '\b')
      text_add(t, "\\b");
    else if (c == '\f')
      text_add(t, "\\f");
    else if (c < 0x20)
      text_add(t, "\\u%04x", c);
    else
      text_add(t, "%c", c);
  }
  text_add(t, "\"");
}

HARNESS_FN void text_free(text_t *t) {
  free(t->s);
  memset(t, 0, sizeof(*t));
}

/* ---- running node -------------------------------------------------------- */

HARNESS_FN const char *node_path(void) {
  const char *node = getenv("CNET_NODE");

  return node != NULL && *node != '\0' ? node : "node";
}

/* Where test/node/<name> is: $CNET_SOURCE_DIR (CTest sets it), else next
 * to this file. */
HARNESS_FN const char *node_script(const char *name) {
  static char path[4096];
  const char *src = getenv("CNET_SOURCE_DIR");

  if (src != NULL && *src != '\0') {
    snprintf(path, sizeof(path), "%s/test/node/%s", src, name);
  } else {
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash != NULL ? (int)(slash - __FILE__) : 1;

    snprintf(path, sizeof(path), "%.*s/node/%s", dir,
             slash != NULL ? __FILE__ : ".", name);
  }
  return path;
}

/* Runs argv (NULL-terminated; argv[0] is looked up on the PATH), its
 * standard output into *out; with out NULL its output and errors are
 * thrown away. Returns the exit status as waitpid() gives it (127: could
 * not be run). */
HARNESS_FN int run_node(char *const argv[], text_t *out) {
  int fds[2], status;
  pid_t pid;

  ASSERT_EQ(0, pipe(fds));
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);

    dup2(fds[1], 1);
    if (out == NULL && devnull >= 0)
      dup2(devnull, 2);
    close(fds[0]);
    close(fds[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  if (out != NULL)
    text_reserve(out, 0);
  for (;;) {
    char chunk[65536];
    ssize_t r = read(fds[0], chunk, sizeof(chunk));

    if (r < 0 && errno == EINTR)
      continue;
    ASSERT_GE(r, 0);
    if (r == 0)
      break;
    if (out != NULL)
      text_put(out, chunk, (size_t)r);
  }
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0)
    ASSERT_EQ(EINTR, errno);
  return status;
}

/* Writes input to a temporary file and runs `node test/node/<script>
 * args... file` (the args NULL-terminated). Returns what node wrote (free
 * it with text_free); fails the case unless node exits 0. */
static text_t node_replay(const char *script, const text_t *input, ...)
    __attribute__((sentinel, unused));

static text_t node_replay(const char *script, const text_t *input, ...) {
  char file[] = "/tmp/cnet-test-diff-XXXXXX";
  char *argv[8];
  size_t argc = 0;
  text_t out = {0};
  const char *arg;
  va_list ap;
  int fd = mkstemp(file), status;

  ASSERT_GE(fd, 0);
  for (size_t off = 0; off < input->len;) {
    ssize_t w = write(fd, input->s + off, input->len - off);

    ASSERT_GT(w, 0);
    off += (size_t)w;
  }
  close(fd);
  argv[argc++] = (char *)node_path();
  argv[argc++] = (char *)node_script(script);
  va_start(ap, input);
  while ((arg = va_arg(ap, const char *)) != NULL) {
    ASSERT_LT(argc, ARRAY_LEN(argv) - 2);
    argv[argc++] = (char *)arg;
  }
  va_end(ap);
  argv[argc++] = file;
  argv[argc] = NULL;
  status = run_node(argv, &out);
  unlink(file);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    text_t cmd = {0};

    for (size_t i = 0; i < argc; i++)
      text_add(&cmd, "%s%s", i != 0 ? " " : "", argv[i]);
    FAIL("%s failed (status 0x%x)", cmd.s, (unsigned)status);
  }
  return out;
}

/* Compares mine (one answer a line) with node's output theirs (a version
 * line, then one answer a line) over count lines; input holds the input of
 * each line, for the report. Prints the first `shown` disagreements as
 * "DISAGREE <what> <unit> <line>" and returns how many there were; fails
 * the case if a text has fewer lines. */
HARNESS_FN size_t node_diff_lines(const char *what, const char *unit,
                                  const text_t *input, const text_t *mine,
                                  const text_t *theirs, size_t count,
                                  size_t shown) {
  const char *in = input->s, *m = mine->s, *t = strchr(theirs->s, '\n');
  size_t bad = 0;

  ASSERT_NOT_NULL(t);
  t++;
  for (size_t i = 0; i < count; i++) {
    const char *in_end = strchr(in, '\n'), *m_end = strchr(m, '\n');
    const char *t_end = strchr(t, '\n');

    if (in_end == NULL || m_end == NULL || t_end == NULL)
      FAIL("%s: node gave %zu answers for %zu %ss", what, i, count, unit);
    if (m_end - m != t_end - t || memcmp(m, t, (size_t)(m_end - m)) != 0) {
      if (bad++ < shown)
        printf("DISAGREE %s %s %zu\n  input: %.*s\n  cnet:  %.*s\n"
               "  node:  %.*s\n",
               what, unit, i, (int)(in_end - in), in, (int)(m_end - m), m,
               (int)(t_end - t), t);
    }
    in = in_end + 1;
    m = m_end + 1;
    t = t_end + 1;
  }
  return bad;
}

/* ---- when node is optional ----------------------------------------------- */

static bool node_available __attribute__((unused));

/* main() for a test whose differential cases skip without node: cases is
 * harness.h's main (included with `#define main harness_main`). Exits 77
 * if every case passed but node could not be run (nothing was compared). */
HARNESS_FN int node_diff_main(int argc, char **argv,
                              int (*cases)(int, char **)) {
  char *probe[] = {(char *)node_path(), "-e", "", NULL};
  int status = run_node(probe, NULL), rc;

  node_available = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  rc = cases(argc, argv);
  if (rc == 0 && !node_available) {
    printf("SKIP: node (%s) could not be run: nothing compared\n", node_path());
    return 77;
  }
  return rc;
}

/* In a differential case: true, after saying SKIP, if node cannot be run. */
HARNESS_FN bool node_missing(void) {
  if (node_available)
    return false;
  printf("SKIP %s: cannot run %s\n", harness_current, node_path());
  return true;
}

#ifdef NODE_DIFF_ADDRESSES

/* ---- random IP addresses ------------------------------------------------- */

static uint64_t rng_state;

HARNESS_FN uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* 0 .. n-1 */
HARNESS_FN uint32_t below(uint32_t n) {
  return (uint32_t)(rng_next() % n);
}

/* The seed in environment variable env (e.g. CNET_BL_SEED=<n>), else
 * fallback. */
HARNESS_FN uint64_t seed(const char *env, uint64_t fallback) {
  const char *s = getenv(env);

  return s != NULL && *s != '\0' ? strtoull(s, NULL, 0) : fallback;
}

typedef struct {
  unsigned char b[16]; /* IPv4 addresses in mapped form */
} ip16_t;

HARNESS_FN bool ip_is_v4(const ip16_t *ip) {
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};

  return memcmp(ip->b, mapped, 12) == 0;
}

HARNESS_FN ip16_t random_base(void) {
  static const unsigned char firsts[] = {0, 1, 10, 127, 192, 255};
  ip16_t ip;

  for (int i = 0; i < 16; i++)
    ip.b[i] = (unsigned char)rng_next();
  switch (below(8)) {
  case 0:
  case 1:
  case 2: /* IPv4 */
    memset(ip.b, 0, 10);
    ip.b[10] = ip.b[11] = 0xff;
    if (below(3) == 0)
      ip.b[12] = firsts[below(sizeof(firsts))];
    break;
  case 3: /* mostly zeros: runs for "::" */
    for (int i = 0; i < 16; i++)
      ip.b[i] = below(3) == 0 ? ip.b[i] : 0;
    break;
  case 4: /* IPv4-compatible ::a.b.c.d, or just beside the mapped block */
    memset(ip.b, 0, 12);
    if (below(3) != 0) {
      ip.b[10] = below(2) ? 0xff : 0xfe;
      ip.b[11] = ip.b[10] == 0xff ? 0xfe : 0xff;
    }
    break;
  case 5: /* top of the space, or its bottom */
    memset(ip.b, below(2) == 0 ? 0xff : 0, 8 + below(8));
    break;
  default: /* anything */
    break;
  }
  return ip;
}

/* A neighbour of ip: low bits flipped, or (rarely) any bit, so that rules
 * and probes land on both sides of every boundary. */
HARNESS_FN ip16_t near(ip16_t ip) {
  switch (below(6)) {
  case 0:
    break;
  case 1: { /* often a bit of the ::ffff: prefix, the mapped boundary */
    int bit = below(2) ? 80 + (int)below(16) : (int)below(128);

    ip.b[bit / 8] ^= (unsigned char)(0x80 >> (bit % 8));
    break;
  }
  default: {
    int bits = (int)below(24);

    for (int i = 0; i < bits / 8 + 1; i++)
      ip.b[15 - i] ^= (unsigned char)rng_next();
    break;
  }
  }
  return ip;
}

/* Random damage, for the error paths. */
HARNESS_FN void mutate(char *s, size_t size) {
  static const char alphabet[] = ":.%0123456789abcdefABCDEFxg -/[]";
  size_t len = strlen(s), at = len != 0 ? below((uint32_t)len) : 0;

  switch (below(5)) {
  case 0:
    if (len > 0)
      memmove(s + at, s + at + 1, len - at);
    break;
  case 1:
    if (len + 2 < size) {
      memmove(s + at + 1, s + at, len - at + 1);
      s[at] = alphabet[below(sizeof(alphabet) - 1)];
    }
    break;
  case 2:
    if (len > 0)
      s[at] = alphabet[below(sizeof(alphabet) - 1)];
    break;
  case 3:
    snprintf(s + len, size - len, "%s", below(2) ? ":" : ".0");
    break;
  default:
    if (len + 3 < size) {
      memmove(s + 1, s, len + 1);
      s[0] = below(2) ? ':' : '0';
    }
    break;
  }
}

HARNESS_FN void text_v4(const unsigned char *b, char *out, size_t size) {
  snprintf(out, size, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

/* An IPv6 text in a random spelling: any zero run (or none) as "::",
 * upper or lower case, leading zeros, a dotted tail, a zone. */
HARNESS_FN void text_v6(const ip16_t *ip, char *out, size_t size) {
  unsigned g[8];
  int groups = below(4) == 0 ? 6 : 8; /* 6: the last 32 bits dotted */
  int run_at = -1, run_len = 0, n = 0;
  bool upper = below(4) == 0;

  for (int i = 0; i < 8; i++)
    g[i] = (unsigned)ip->b[2 * i] << 8 | ip->b[2 * i + 1];
  if (below(4) != 0) { /* compress a random zero run */
    int starts[8], count = 0;

    for (int i = 0; i < groups; i++) {
      if (g[i] == 0 && (i == 0 || g[i - 1] != 0))
        starts[count++] = i;
    }
    if (count > 0) {
      run_at = starts[below((uint32_t)count)];
      while (run_at + run_len < groups && g[run_at + run_len] == 0)
        run_len++;
      run_len = 1 + (int)below((uint32_t)run_len); /* any part of it */
    }
  }
  for (int i = 0; i < groups; i++) {
    if (i == run_at) {
      n += snprintf(out + n, size - (size_t)n, "::");
      i += run_len - 1;
      continue;
    }
    if (n > 0 && out[n - 1] != ':')
      n += snprintf(out + n, size - (size_t)n, ":");
    n += snprintf(out + n, size - (size_t)n,
                  below(6) == 0 ? (upper ? "%04X" : "%04x")
                                : (upper ? "%X" : "%x"),
                  g[i]);
  }
  if (groups == 6) {
    if (n > 0 && out[n - 1] != ':')
      n += snprintf(out + n, size - (size_t)n, ":");
    text_v4(ip->b + 12, out + n, size - (size_t)n);
    n = (int)strlen(out);
  }
  if (below(12) == 0) {
    static const char *const zones[] = {"%eth0", "%1", "%", "%lo"};

    snprintf(out + n, size - (size_t)n, "%s", zones[below(4)]);
  }
}

/* The text for ip in family fam, and that family: IPv4 addresses usually
 * as IPv4 text (family 0 or 4), sometimes in mapped IPv6 text (family 6);
 * rarely the wrong family for the text, or damaged text. */
HARNESS_FN int spell(const ip16_t *ip, char *out, size_t size, bool allow_bad) {
  int fam;

  if (ip_is_v4(ip) && below(3) != 0) {
    text_v4(ip->b + 12, out, size);
    fam = below(2) ? 4 : 0;
  } else {
    text_v6(ip, out, size);
    fam = 6;
  }
  if (allow_bad && below(30) == 0)
    fam = fam == 6 ? 4 : 6;
  if (allow_bad && below(20) == 0)
    mutate(out, size);
  return fam;
}

#endif /* NODE_DIFF_ADDRESSES */

#endif /* CNET_TEST_NODE_DIFF_H */

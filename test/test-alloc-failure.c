/* Fault injection (issue 5, "harder to break": bad input gets a clear error
 * and loses nothing; it never crashes the process). An allocator installed
 * with cnet_replace_allocator -- so it serves cnet and libuv alike -- fails
 * allocation call number N (malloc, calloc and realloc all count; a failed
 * realloc leaves the block untouched), and in a second mode every call from
 * N on. For every N from 1 to the scenario's allocation count (measured by a
 * counting pass first), a complete scenario runs on a fresh loop in a child
 * process of its own, so an abort names its N and the campaign goes on.
 *
 * Each run must end without crash, abort, sanitizer report, hang or leak:
 * the loop closes (no handle left, uv_loop_close() == 0), every block the
 * allocator handed out is back, every byte that is delivered is the right
 * one, and a run that did not fully succeed must have said why -- an error
 * return with cnet_last_error() set, a NULL constructor, an 'error' (or
 * 'acceptError', or a write callback's error) of code ENOMEM/ENOBUFS with
 * Node's message. Bytes a write callback reported as handed to the kernel
 * must reach a peer that sees a clean end. With N past the count nothing
 * fails, and the scenario must fully succeed (the positive control).
 *
 * libuv's own limits: libuv 1.44 aborts, by design, where a few internal
 * allocations fail. The one these scenarios reach is maybe_resize()
 * (src/unix/core.c, called from uv__io_start(): growing loop->watchers,
 * the fd-indexed watcher array, when a descriptor higher than any seen
 * before starts being watched -- uv_poll_start, uv_read_start, a connect,
 * a write; uv_loop_init reaches it through uv_signal_init, so N=2 always
 * does). Such a run is recognised (the abort comes from libuv right after
 * a failed allocation whose caller is libuv) and counted as skipped, not
 * failed. The second: uv_write2 counts its request as active
 * (uv__req_init) before it allocates the buffer array for more than four
 * buffers, and returns UV_ENOMEM without uncounting it, so uv_run never
 * returns; a finished run with no active handle and a request still
 * counted after such a failure is skipped the same way (cnet could avoid
 * it by never passing libuv more than four buffers).
 *
 * cnet's own abort: where an allocation fails with no caller left to tell
 * (deferring an event, a callback or a request from inside the loop),
 * cnet__xmalloc prints "cnet: out of memory" and aborts (decision 34).
 * Such runs are counted and their sites listed, not failed. Every other
 * abort or crash, any hang, leak or lost byte fails the case and is printed
 * with both stacks -- where the allocation failed and where it died --
 * symbolised with addr2line.
 *
 * Scenarios (one case each; every case runs both modes):
 *   af01 TCP echo: two clients in turn, echoed by pipe(c, c) and by
 *        'data' -> write(); each writes four messages, then end()s
 *   af02 the same over a Unix socket
 *   af03 queued writes: cork/uncork, write_owned, 1.25 MiB to a server
 *        (pause_on_connect) that echoes with a pipe into itself, corked
 *        while the client reads nothing; so the client's writes queue
 *        behind the pipe's backpressure, and the echo's chunks queue too
 *   af04 set_timeout (fires on the server), set_encoding('utf8') on both
 *        sides, write_string with hex and base64, a character split across
 *        writes, a >1 KiB string; a cnet_decoder_t (never allocates)
 *   af05 listen and connect on "localhost" (lookups); a block list on the
 *        server and the connect; SocketAddress init/parse/format
 *
 * HARNESS_NO_FORK does not apply inside a campaign: the runs always fork.
 * AF_ONLY_N=<n> and AF_MODE=nth|after run a single N (with its stderr), for
 * a debugger: AF_NO_FORK=1 then runs it in the case's own process.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <sys/mman.h>

/* cnet's deliberate out-of-memory abort (src/allocator.c); its address lets
 * an abort stack be attributed to it. Hidden in the shared library, but the
 * tests link the static one. */
void *cnet__xmalloc(size_t n);

#define NCLI 2      /* sequential clients in the echo scenarios */
#define NSCONN 8    /* accepted connections tracked */
#define FRAMES 32
#define RUN_WATCHDOG_MS 4000
#define WATCH_MS 50
#define RUN_ALARM_S 8
#define CLIENT_IDLE_MS 300 /* a client gives up on a server that cannot
                              accept (every later allocation failing) */

/* ---- the failing allocator ----------------------------------------------- */

enum { MODE_NTH, MODE_AFTER };
static const char *const mode_name[] = {"nth", "after"};

static struct {
  long calls;        /* allocation calls so far (malloc, calloc, realloc) */
  long fail_at;      /* 0: never fail */
  int mode;
  long injected;     /* calls failed on purpose */
  bool last_failed;  /* the most recent call was failed on purpose */
  long live_blocks;  /* blocks handed out and not freed */
  int64_t live_bytes;
  void *fail_frames[FRAMES]; /* where the last injected failure happened */
  int nfail_frames;
  bool libuv_direct_fail;
  void *fail_caller; /* who called the allocator that last failed */
} A;

static bool in_object(void *addr, const char *part);
static bool is_exe(void *addr);
static void save_fail_frames(void);

/* libuv's thread pool may call in from its threads: atomics for the count. */
/* caller: the allocator's caller (cnet, or libuv), for the report. */
static bool should_fail(void *caller) {
  long n = __atomic_add_fetch(&A.calls, 1, __ATOMIC_RELAXED);
  bool fail = A.fail_at != 0 &&
              (A.mode == MODE_NTH ? n == A.fail_at : n >= A.fail_at);

  A.last_failed = fail;
  if (fail) {
    __atomic_add_fetch(&A.injected, 1, __ATOMIC_RELAXED);
    A.nfail_frames = backtrace(A.fail_frames, FRAMES);
    A.fail_caller = caller;
    /* cnet calling straight into a libuv function that failed to allocate
     * (uv_write with more than four buffers, uv_getaddrinfo, ...). */
    for (int i = 0; i + 1 < A.nfail_frames; i++)
      if (A.fail_frames[i] == caller && in_object(caller, "libuv") &&
          is_exe(A.fail_frames[i + 1]))
        A.libuv_direct_fail = true;
    save_fail_frames();
  }
  return fail;
}

static void note_live(void *p, int sign) {
  __atomic_add_fetch(&A.live_blocks, sign, __ATOMIC_RELAXED);
  __atomic_add_fetch(&A.live_bytes, sign * (int64_t)malloc_usable_size(p),
                     __ATOMIC_RELAXED);
}

static void *af_malloc(size_t size) {
  void *p;

  if (should_fail(__builtin_return_address(0)))
    return NULL;
  if ((p = malloc(size)) != NULL)
    note_live(p, 1);
  return p;
}

static void *af_calloc(size_t n, size_t size) {
  void *p;

  if (should_fail(__builtin_return_address(0)))
    return NULL;
  if ((p = calloc(n, size)) != NULL)
    note_live(p, 1);
  return p;
}

static void af_free(void *p) {
  if (p == NULL)
    return;
  note_live(p, -1);
  free(p);
}

static void *af_realloc(void *p, size_t size) {
  int64_t old;
  void *q;

  if (p != NULL && size == 0) { /* C's realloc(p, 0) frees: not an alloc */
    af_free(p);
    return NULL;
  }
  if (should_fail(__builtin_return_address(0)))
    return NULL; /* p untouched, as C's realloc leaves it */
  old = p != NULL ? (int64_t)malloc_usable_size(p) : 0;
  if ((q = realloc(p, size)) == NULL)
    return NULL;
  if (p == NULL)
    __atomic_add_fetch(&A.live_blocks, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&A.live_bytes, (int64_t)malloc_usable_size(q) - old,
                     __ATOMIC_RELAXED);
  return q;
}

/* ---- what a run reports to the campaign (shared memory) ------------------ */

enum {
  AB_NONE,
  AB_LIBUV_OOM,   /* libuv aborted after a failed allocation of its own */
  AB_CNET_XMALLOC, /* cnet__xmalloc: cnet's deliberate abort */
  AB_ASSERT,      /* an assert() failed (in cnet or libuv) */
  AB_ASAN,        /* a sanitizer report */
  AB_OTHER,       /* any other abort, or a crash */
  AB_LIBUV_REQ,   /* libuv's uv_write2 kept a request counted after ENOMEM */
};
static const char *const abort_name[] = {
    "none", "libuv out-of-memory abort", "cnet__xmalloc abort",
    "assertion failure", "sanitizer report", "abort/crash",
    "libuv request leak (uv_write ENOMEM): loop never ends"};

typedef struct {
  long allocs, injected;
  bool done;     /* the run reached its end and passed every check */
  bool complete; /* the scenario fully succeeded */
  bool hang;
  int surfaced;  /* failures reported to the application */
  int abort_kind;
  int sig;
  void *fail_frames[FRAMES];
  int nfail_frames;
  void *fail_caller;
  void *abort_frames[FRAMES];
  int nabort_frames;
  char errors[400]; /* the first few errors surfaced */
  char note[200];   /* anything the scenario wants in the summary */
} result_t;

static result_t *RES; /* shared with the campaign */

/* Where the last injected failure happened, for the campaign's report of
 * a run that dies or fails a check. */
static void save_fail_frames(void) {
  memcpy(RES->fail_frames, A.fail_frames, sizeof(A.fail_frames));
  RES->nfail_frames = A.nfail_frames;
  RES->fail_caller = A.fail_caller;
  RES->allocs = A.calls;
  RES->injected = A.injected;
}
static bool in_asan_report;

#if defined(__SANITIZE_ADDRESS__)
/* ASan calls this (a weak hook) when it finds an error, before it aborts. */
void __asan_on_error(void);
void __asan_on_error(void) {
  in_asan_report = true;
}
#endif

static bool in_object(void *addr, const char *part) {
  Dl_info di;

  return dladdr(addr, &di) != 0 && di.dli_fname != NULL &&
         strstr(di.dli_fname, part) != NULL;
}

static bool is_exe(void *addr) {
  Dl_info di;
  Dl_info me;

  return dladdr(addr, &di) != 0 && dladdr((void *)is_exe, &me) != 0 &&
         di.dli_fbase == me.dli_fbase;
}

static bool is_libc(void *addr) {
  return in_object(addr, "libc.so") || in_object(addr, "libasan") ||
         in_object(addr, "libubsan");
}

static bool frame_named(void *addr, const char *name) {
  Dl_info di;

  return dladdr(addr, &di) != 0 && di.dli_sname != NULL &&
         strcmp(di.dli_sname, name) == 0;
}

/* Who aborted: the first frame past the handler and libc's raise/abort. */
static int classify_abort(void **fr, int n) {
  int i;

  if (in_asan_report)
    return AB_ASAN;
  for (i = 1; i < n; i++)
    if (frame_named(fr[i], "__assert_fail"))
      return AB_ASSERT;
  for (i = 1; i < n && (is_libc(fr[i]) || is_exe(fr[i])) &&
              !((uintptr_t)fr[i] - (uintptr_t)cnet__xmalloc < 512);
       i++)
    if (!is_libc(fr[i]) && i > 1)
      break;
  if (i >= n)
    return AB_OTHER;
  if ((uintptr_t)fr[i] - (uintptr_t)cnet__xmalloc < 512)
    return AB_CNET_XMALLOC;
  /* libuv aborting right after libuv's own allocation failed. */
  if (in_object(fr[i], "libuv") && A.last_failed &&
      in_object(A.fail_caller, "libuv"))
    return AB_LIBUV_OOM;
  return AB_OTHER;
}

static void on_fatal_signal(int sig) {
  static const char msg[] = "[alloc-failure] fatal signal in a run\n";
  ssize_t w = write(2, msg, sizeof(msg) - 1);

  (void)w;
  RES->sig = sig;
  RES->nabort_frames = backtrace(RES->abort_frames, FRAMES);
  RES->abort_kind = classify_abort(RES->abort_frames, RES->nabort_frames);
  memcpy(RES->fail_frames, A.fail_frames, sizeof(A.fail_frames));
  RES->nfail_frames = A.nfail_frames;
  RES->allocs = A.calls;
  RES->injected = A.injected;
  signal(sig, SIG_DFL);
  raise(sig);
}

/* ---- the scenario's state ------------------------------------------------ */

typedef struct flow_s {
  int id;            /* the stream's pattern; its first byte */
  uint64_t written;  /* bytes of writes that were taken (return >= 0) */
  uint64_t acked;    /* bytes whose write callback said "sent" */
  uint64_t received; /* bytes (or text) received, each one checked */
  bool got_end, error, closed, write_failed, timed_out;
  bool bad_tail;     /* text ended in U+FFFD: a character cut by a failure */
  cnet_socket_t *s;
} flow_t;

typedef struct {
  flow_t *f;
  size_t len;
} wrec_t;

typedef enum { SC_TCP, SC_UNIX, SC_QUEUE, SC_TEXT, SC_LOOKUP } scen_t;

static struct {
  scen_t sc;
  uv_loop_t loop;
  uv_timer_t watchdog, delay;
  bool delay_open;
  cnet_server_t *srv;
  const char *path;
  int port;
  int nclients, cur;
  flow_t cli[NCLI];
  flow_t sconn[NSCONN]; /* accepted connections, in order */
  int nsconn;
  wrec_t wrecs[256];
  int nwrecs;
  bool finished;
  int surfaced, enomem;
  int timeouts;        /* 'timeout' events on the server (af04) */
  int releases;        /* write_owned's release calls (af03) */
  bool owned_taken;    /* write_owned returned >= 0 */
  int queued;          /* client writes that returned 0 (af03) */
  size_t max_echo_queue; /* the server's largest writable_length (af03) */
  bool corked[NSCONN];   /* af03: the accepted socket is still corked */
  cnet_block_list_t *bl;
  char label[96];
} R;

static void finish(void);
static void next_client(void);

/* ---- recording failures -------------------------------------------------- */

static void note_error(const char *where, const cnet_error_t *e) {
  size_t len = strlen(RES->errors);

  R.surfaced++;
  RES->surfaced = R.surfaced;
  if (e->errnum == UV_ENOMEM || e->errnum == UV_ENOBUFS)
    R.enomem++;
  /* Node's shape: a code, and a message that names it. */
  if (e->code == NULL || e->message[0] == '\0')
    FAIL("%s: an error without code or message (errnum %d)", where,
         e->errnum);
  if (len < sizeof(RES->errors) - 1)
    snprintf(RES->errors + len, sizeof(RES->errors) - len, "%s%s: %.200s",
             len != 0 ? "; " : "", where, e->message);
}

/* A negative return: cnet_last_error() must hold that very code. */
static void note_sync(const char *where, int rc) {
  const cnet_error_t *e = cnet_last_error();

  if (rc >= 0)
    FAIL("%s: note_sync(%d)", where, rc);
  if (e->errnum != rc)
    FAIL("%s returned %d (%s) but cnet_last_error() is %d (%s)", where, rc,
         cnet_err_name(rc), e->errnum, e->message);
  note_error(where, e);
}

/* A listener registration (on/once) returns its code without touching
 * cnet_last_error(): it only ever fails for want of memory here. */
static void note_on(const char *where, int rc) {
  cnet_error_t e;

  if (rc != UV_ENOMEM)
    FAIL("%s: %d (%s), expected ENOMEM", where, rc, cnet_err_name(rc));
  memset(&e, 0, sizeof(e));
  e.errnum = rc;
  e.code = cnet_err_name(rc);
  snprintf(e.message, sizeof(e.message), "%s %s", where, e.code);
  note_error(where, &e);
}

static void note_null(const char *where) {
  const cnet_error_t *e = cnet_last_error();

  if (e->errnum == 0)
    FAIL("%s returned NULL with no cnet_last_error()", where);
  note_error(where, e);
}

static void on_unhandled(const char *what, const cnet_error_t *err,
                         void *ctx) {
  char where[64];

  (void)ctx;
  snprintf(where, sizeof(where), "unhandled %s error", what);
  note_error(where, err);
}

/* ---- byte patterns ------------------------------------------------------- */

/* Byte off of stream id: the id first (so an accepted connection knows whose
 * it is), then bytes that differ for every offset and stream. */
static unsigned char pat(int id, uint64_t off) {
  uint64_t x;

  if (off == 0)
    return (unsigned char)id;
  x = (off + 0x9e3779b97f4a7c15ull * (uint64_t)id) * 0xbf58476d1ce4e5b9ull;
  x ^= x >> 31;
  return (unsigned char)(x >> 24);
}

static void fill(char *buf, int id, uint64_t off, size_t len) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (char)pat(id, off + i);
}

/* Received bytes continue the stream exactly where it is. */
static void check_bytes(flow_t *f, const char *who, const char *base,
                        size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)base[i] != pat(f->id, f->received + i))
      FAIL("%s: stream %d byte %llu is 0x%02x, expected 0x%02x (data lost "
           "or corrupted)",
           who, f->id, (unsigned long long)(f->received + i),
           (unsigned char)base[i], pat(f->id, f->received + i));
  f->received += len;
}

/* af04's text: what the client's writes encode to, as UTF-8. */
static const char *expected_text(void) {
  static char text[4096];
  size_t n;

  if (text[0] != '\0')
    return text;
  /* hex "68c3a96c6c6f" is "héllo", base64 "IOKCrA==" is " €", then an
   * emoji in two writes, then 500 x "aé€" (3000 bytes) as utf8. */
  n = (size_t)snprintf(text, sizeof(text), "h\xc3\xa9llo \xe2\x82\xac"
                                           "\xf0\x9f\x98\x80");
  for (int i = 0; i < 500; i++) {
    memcpy(text + n, "a\xc3\xa9\xe2\x82\xac", 6);
    n += 6;
  }
  text[n] = '\0';
  return text;
}

/* Decoded text continues the expected text; a U+FFFD at the very end is
 * what a FIN in the middle of a character leaves (only after a failure). */
static void check_text(flow_t *f, const char *who, const char *base,
                       size_t len) {
  const char *want = expected_text();
  size_t wl = strlen(want);

  if (f->bad_tail)
    FAIL("%s: text after a U+FFFD tail", who);
  if (f->received + len <= wl &&
      memcmp(base, want + f->received, len) == 0) {
    f->received += len;
    return;
  }
  if (len >= 3 && memcmp(base + len - 3, "\xef\xbf\xbd", 3) == 0 &&
      f->received + len - 3 <= wl &&
      memcmp(base, want + f->received, len - 3) == 0) {
    f->received += len - 3;
    f->bad_tail = true;
    return;
  }
  FAIL("%s: text at %llu differs from what was written (%zu bytes: "
       "\"%.*s\")",
       who, (unsigned long long)f->received, len, (int)(len < 40 ? len : 40),
       base);
}

/* ---- write bookkeeping --------------------------------------------------- */

static void on_write_done(cnet_socket_t *s, const cnet_error_t *err,
                          void *ctx) {
  wrec_t *w = ctx;

  (void)s;
  if (err == NULL) {
    if (w->f->write_failed)
      FAIL("a write succeeded after an earlier one of stream %d failed",
           w->f->id);
    w->f->acked += w->len;
  } else {
    w->f->write_failed = true;
    note_error("write callback", err);
  }
}

static wrec_t *wrec(flow_t *f, size_t len) {
  wrec_t *w;

  ASSERT(R.nwrecs < (int)ARRAY_LEN(R.wrecs));
  w = &R.wrecs[R.nwrecs++];
  w->f = f;
  w->len = len;
  return w;
}

/* Write len bytes of f's stream; false (and the socket destroyed) when the
 * write was refused, so that the stream never has a hole. */
static bool write_pattern(flow_t *f, size_t len) {
  static char buf[64 * 1024];
  int r;

  ASSERT(len <= sizeof(buf));
  fill(buf, f->id, f->written, len);
  r = cnet_socket_write(f->s, buf, len, on_write_done, wrec(f, len));
  if (r < 0) {
    note_sync("cnet_socket_write", r);
    cnet_socket_destroy(f->s, NULL);
    return false;
  }
  if (r == 0)
    R.queued++;
  f->written += len;
  return true;
}

static bool write_text(flow_t *f, const char *str, const char *enc,
                       size_t encoded_len) {
  int r = cnet_socket_write_string(f->s, str, enc, on_write_done,
                                   wrec(f, encoded_len));

  if (r < 0) {
    note_sync("cnet_socket_write_string", r);
    cnet_socket_destroy(f->s, NULL);
    return false;
  }
  f->written += encoded_len;
  return true;
}

static bool write_raw(flow_t *f, const char *bytes, size_t len) {
  int r = cnet_socket_write(f->s, bytes, len, on_write_done, wrec(f, len));

  if (r < 0) {
    note_sync("cnet_socket_write", r);
    cnet_socket_destroy(f->s, NULL);
    return false;
  }
  f->written += len;
  return true;
}

static void end_client(flow_t *f) {
  int r = cnet_socket_end(f->s, NULL, 0, NULL, NULL);

  if (r < 0) {
    note_sync("cnet_socket_end", r);
    cnet_socket_destroy(f->s, NULL);
  }
}

/* ---- server side --------------------------------------------------------- */

static bool text_scenario(void) {
  return R.sc == SC_TEXT;
}

static void on_sconn_data(cnet_socket_t *s, const cnet_event_t *ev,
                          void *ctx) {
  flow_t *f = ctx;
  int r;

  if (text_scenario()) {
    f->id = 1;
    check_text(f, "server", ev->data.base, ev->data.len);
  } else {
    if (f->received == 0 && ev->data.len != 0) {
      int id = (unsigned char)ev->data.base[0];
      if (id < 1 || id > NCLI)
        FAIL("server: a stream that starts with 0x%02x", id);
      f->id = id;
    }
    check_bytes(f, "server", ev->data.base, ev->data.len);
  }
  if (cnet_socket_writable_length(s) > R.max_echo_queue)
    R.max_echo_queue = cnet_socket_writable_length(s);
  /* af01/af02's second client, and af04: echo by hand. */
  if (R.sc == SC_TEXT || ((R.sc == SC_TCP || R.sc == SC_UNIX) && f->id == 2)) {
    r = cnet_socket_write(s, ev->data.base, ev->data.len, NULL, NULL);
    if (r < 0) {
      note_sync("server cnet_socket_write", r);
      cnet_socket_destroy(s, NULL);
    }
  }
}

static void on_sconn_end(cnet_socket_t *s, const cnet_event_t *ev,
                         void *ctx) {
  (void)s, (void)ev;
  ((flow_t *)ctx)->got_end = true;
}

static void on_sconn_error(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)s;
  ((flow_t *)ctx)->error = true;
  note_error("server socket error", ev->error);
}

static void on_sconn_close(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  flow_t *f = ctx;

  (void)s, (void)ev;
  f->closed = true;
  f->s = NULL;
}

static void on_sconn_timeout(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  (void)s, (void)ev, (void)ctx;
  R.timeouts++; /* only notifies: the client ends on its own */
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *s = ev->connection;
  flow_t *f;
  int r;

  (void)srv, (void)ctx;
  ASSERT(R.nsconn < NSCONN);
  f = &R.sconn[R.nsconn++];
  /* af03: the echo (a pipe) goes into a corked socket until the client
   * reads: the pipe's writes queue in user memory, and the pipe pauses. */
  if (R.sc == SC_QUEUE) {
    cnet_socket_cork(s);
    R.corked[R.nsconn - 1] = true;
  }
  /* 'close' first: without it the socket is dropped at once. */
  if ((r = cnet_socket_on(s, CNET_EV_CLOSE, on_sconn_close, f)) != 0) {
    note_on("server on('close')", r);
    f->closed = true;
    cnet_socket_destroy(s, NULL);
    return;
  }
  f->s = s;
  if ((r = cnet_socket_on(s, CNET_EV_ERROR, on_sconn_error, f)) != 0 ||
      (r = cnet_socket_on(s, CNET_EV_END, on_sconn_end, f)) != 0) {
    note_on("server on()", r);
    cnet_socket_destroy(s, NULL);
    return;
  }
  if (R.sc == SC_TEXT) {
    if ((r = cnet_socket_set_encoding(s, "utf8")) != 0 ||
        (r = cnet_socket_set_timeout(s, 5, on_sconn_timeout, NULL)) != 0) {
      note_sync("server set_encoding/set_timeout", r);
      cnet_socket_destroy(s, NULL);
      return;
    }
  }
  if ((r = cnet_socket_on(s, CNET_EV_DATA, on_sconn_data, f)) != 0) {
    note_on("server on('data')", r);
    cnet_socket_destroy(s, NULL);
    return;
  }
  /* The echo by pipe (af01/af02's first client, af03, af05): the 'data'
   * listener above only checks. The pipe's own 'data' runs after it. In
   * af03 the client reads nothing at first, so the echo queues too. */
  if (R.sc != SC_TEXT) {
    if (R.cur == 0 && (r = cnet_socket_pipe(s, s, NULL)) != 0) {
      note_on("cnet_socket_pipe", r);
      cnet_socket_destroy(s, NULL);
    }
  }
}

/* ---- client side --------------------------------------------------------- */

static void on_cli_data(cnet_socket_t *s, const cnet_event_t *ev,
                        void *ctx) {
  flow_t *f = ctx;

  (void)s;
  if (text_scenario())
    check_text(f, "client", ev->data.base, ev->data.len);
  else
    check_bytes(f, "client", ev->data.base, ev->data.len);
  if (f->received > f->written)
    FAIL("client %d: received %llu of %llu bytes written", f->id,
         (unsigned long long)f->received, (unsigned long long)f->written);
}

static void on_cli_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s, (void)ev;
  ((flow_t *)ctx)->got_end = true;
}

static void on_cli_error(cnet_socket_t *s, const cnet_event_t *ev,
                         void *ctx) {
  (void)s;
  ((flow_t *)ctx)->error = true;
  note_error("client error", ev->error);
}

static void on_cli_timeout(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)ev;
  ((flow_t *)ctx)->timed_out = true; /* the server cannot answer */
  cnet_socket_destroy(s, NULL);
}

static void on_cli_close(cnet_socket_t *s, const cnet_event_t *ev,
                         void *ctx) {
  flow_t *f = ctx;

  (void)s, (void)ev;
  f->closed = true;
  f->s = NULL;
  next_client();
}

static void on_delay(uv_timer_t *t);

static void resume_servers(void) {
  for (int i = 0; i < R.nsconn; i++)
    if (R.sconn[i].s != NULL)
      cnet_socket_resume(R.sconn[i].s);
}

/* af03: the echo may flow once the client reads (or the run ends). */
static void uncork_servers(void) {
  for (int i = 0; i < R.nsconn; i++)
    if (R.sconn[i].s != NULL && R.corked[i]) {
      R.corked[i] = false;
      cnet_socket_uncork(R.sconn[i].s);
    }
}

static void release_owned(void *data, size_t len, void *ctx) {
  (void)data, (void)len, (void)ctx;
  R.releases++;
}

static void on_cli_connect(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  static const size_t sizes[] = {200, 3000, 20000, 7};
  static char owned[4096];
  flow_t *f = ctx;
  int r;

  (void)ev;
  switch (R.sc) {
  case SC_TCP:
  case SC_UNIX:
  case SC_LOOKUP:
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
      if (!write_pattern(f, sizes[i]))
        return;
    end_client(f);
    break;
  case SC_QUEUE:
    /* Corked: eight chunks queue and go out as one uv_write of eight
     * buffers (libuv allocates the buffer array past four). */
    cnet_socket_cork(s);
    for (int i = 0; i < 8; i++)
      if (!write_pattern(f, 64))
        return;
    cnet_socket_uncork(s);
    fill(owned, f->id, f->written, sizeof(owned));
    r = cnet_socket_write_owned(s, owned, sizeof(owned), release_owned, NULL,
                                on_write_done, wrec(f, sizeof(owned)));
    if (r < 0) {
      note_sync("cnet_socket_write_owned", r);
      cnet_socket_destroy(s, NULL);
      return;
    }
    R.owned_taken = true;
    f->written += sizeof(owned);
    /* The server reads nothing yet: most of these queue in user memory. */
    for (int i = 0; i < 40; i++)
      if (!write_pattern(f, 32 * 1024))
        return;
    end_client(f);
    ASSERT_EQ(0, uv_timer_start(&R.delay, on_delay, 30, 0));
    break;
  case SC_TEXT: {
    /* > 1 KiB of text: write_string's own buffer comes from the heap. */
    static char big[3001];
    for (int i = 0; i < 500; i++)
      memcpy(big + 6 * i, "a\xc3\xa9\xe2\x82\xac", 6);
    if (!write_text(f, "68c3a96c6c6f", "hex", 6) ||
        !write_text(f, "IOKCrA==", "base64", 4) ||
        !write_raw(f, "\xf0\x9f", 2) || !write_raw(f, "\x98\x80", 2) ||
        !write_text(f, big, "utf8", 3000))
      return;
    /* Idle for longer than the server's 5 ms timeout, then end. */
    ASSERT_EQ(0, uv_timer_start(&R.delay, on_delay, 25, 0));
    break;
  }
  }
}

/* af03: the echo may go out and the client reads; af04: the client ends
 * after idling. Not resume() on the server: its pipe paused it (a resume
 * there would defeat the pipe's backpressure, see cnet_socket_pipe). */
static void on_delay(uv_timer_t *t) {
  (void)t;
  if (R.sc == SC_QUEUE) {
    for (int i = 0; i < R.nsconn; i++)
      if (R.sconn[i].s != NULL &&
          cnet_socket_writable_length(R.sconn[i].s) > R.max_echo_queue)
        R.max_echo_queue = cnet_socket_writable_length(R.sconn[i].s);
    uncork_servers();
    if (R.cli[0].s != NULL)
      cnet_socket_resume(R.cli[0].s);
  }
  else if (R.sc == SC_TEXT && R.cli[0].s != NULL)
    end_client(&R.cli[0]);
}

static void start_client(int i) {
  flow_t *f = &R.cli[i];
  cnet_connect_options_t o;
  cnet_socket_t *s;
  int r;

  memset(f, 0, sizeof(*f));
  f->id = i + 1;
  memset(&o, 0, sizeof(o));
  o.timeout = CLIENT_IDLE_MS;
  if (R.sc == SC_UNIX) {
    o.path = R.path;
  } else {
    o.port = R.port;
    o.host = R.sc == SC_LOOKUP ? "localhost" : "127.0.0.1";
    o.block_list = R.bl;
  }
  s = cnet_create_connection(&R.loop, &o, on_cli_connect, f);
  if (s == NULL) {
    note_null("cnet_create_connection");
    f->closed = true;
    next_client();
    return;
  }
  if ((r = cnet_socket_on(s, CNET_EV_CLOSE, on_cli_close, f)) != 0) {
    note_on("client on('close')", r);
    f->closed = true;
    cnet_socket_destroy(s, NULL);
    next_client();
    return;
  }
  f->s = s;
  if ((r = cnet_socket_on(s, CNET_EV_ERROR, on_cli_error, f)) != 0 ||
      (r = cnet_socket_on(s, CNET_EV_END, on_cli_end, f)) != 0 ||
      (r = cnet_socket_on(s, CNET_EV_TIMEOUT, on_cli_timeout, f)) != 0 ||
      (r = cnet_socket_on(s, CNET_EV_DATA, on_cli_data, f)) != 0) {
    note_on("client on()", r);
    cnet_socket_destroy(s, NULL);
    return;
  }
  if (R.sc == SC_QUEUE)
    cnet_socket_pause(s); /* the echo queues on the server meanwhile */
  if (R.sc == SC_TEXT && (r = cnet_socket_set_encoding(s, "utf8")) != 0) {
    note_sync("client set_encoding", r);
    cnet_socket_destroy(s, NULL);
  }
}

static void next_client(void) {
  if (++R.cur < R.nclients)
    start_client(R.cur);
  else
    finish();
}

/* Everything the application owns goes; the loop then runs dry. */
static void finish(void) {
  if (R.finished)
    return;
  R.finished = true;
  /* An accepted socket still paused or corked (af03) would never read its
   * peer's end and close: let it, as an application would. */
  resume_servers();
  uncork_servers();
  if (R.srv != NULL) {
    cnet_server_free(R.srv);
    R.srv = NULL;
  }
  if (R.delay_open) {
    uv_close((uv_handle_t *)&R.delay, NULL);
    R.delay_open = false;
  }
}

static void on_srv_listening(cnet_server_t *srv, const cnet_event_t *ev,
                             void *ctx) {
  cnet_address_t a;

  (void)ev, (void)ctx;
  if (R.sc != SC_UNIX) {
    ASSERT_EQ(0, cnet_server_address(srv, &a));
    R.port = a.port;
  }
  start_client(0);
}

static void on_srv_error(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  (void)srv, (void)ctx;
  note_error("server error", ev->error);
  finish();
}

static void on_srv_accept_error(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  (void)srv, (void)ctx;
  note_error("acceptError", ev->error); /* the server keeps listening */
}

static void setup_server(void) {
  cnet_server_options_t so;
  cnet_listen_options_t lo;
  int r;

  memset(&so, 0, sizeof(so));
  so.pause_on_connect = R.sc == SC_QUEUE;
  so.block_list = R.bl;
  R.srv = cnet_create_server(&R.loop, &so, on_connection, NULL);
  if (R.srv == NULL) {
    note_null("cnet_create_server");
    finish();
    return;
  }
  if ((r = cnet_server_on(R.srv, CNET_EV_ERROR, on_srv_error, NULL)) != 0 ||
      (r = cnet_server_on(R.srv, CNET_EV_ACCEPT_ERROR, on_srv_accept_error,
                          NULL)) != 0) {
    note_on("cnet_server_on", r);
    finish();
    return;
  }
  memset(&lo, 0, sizeof(lo));
  if (R.sc == SC_UNIX)
    lo.path = R.path;
  else
    lo.host = R.sc == SC_LOOKUP ? "localhost" : "127.0.0.1";
  r = cnet_server_listen(R.srv, &lo, on_srv_listening, NULL);
  if (r != 0) {
    note_sync("cnet_server_listen", r);
    finish();
  }
}

/* af05: BlockList and SocketAddress, each call either works or says
 * ENOMEM and changes nothing. */
static void block_list_and_addresses(void) {
  cnet_socket_address_options_t so;
  cnet_socket_address_t sa;
  char buf[80];
  size_t added = 0;
  bool subnet = false;
  int r;

  if ((R.bl = cnet_block_list_new()) == NULL) {
    note_null("cnet_block_list_new");
  } else {
    if ((r = cnet_block_list_add_subnet(R.bl, "192.0.2.0", 24, 4)) < 0)
      note_sync("add_subnet", r);
    else
      added++, subnet = true;
    if ((r = cnet_block_list_add_address(R.bl, "2001:db8::1", 6)) < 0)
      note_sync("add_address", r);
    else
      added++;
    if ((r = cnet_block_list_add_range(R.bl, "198.51.100.1", "198.51.100.9",
                                       4)) < 0)
      note_sync("add_range", r);
    else
      added++;
    if ((r = cnet_block_list_add_rule(R.bl, "Subnet: IPv4 203.0.113.0/24")) <
        0)
      note_sync("add_rule", r);
    else
      added++;
    ASSERT_EQ(added, cnet_block_list_rule_count(R.bl));
    ASSERT_EQ(subnet, cnet_block_list_check(R.bl, "192.0.2.5", 4));
    ASSERT(!cnet_block_list_check(R.bl, "127.0.0.1", 4));
    ASSERT(!cnet_block_list_check(R.bl, "::1", 6));
    if (added != 0)
      ASSERT_GT(cnet_block_list_rule(R.bl, 0, buf, sizeof(buf)), 0);
  }
  memset(&so, 0, sizeof(so));
  so.address = "::1";
  so.family = 6;
  so.port = 80;
  if ((r = cnet_socket_address_init(&sa, &so)) < 0) {
    note_sync("cnet_socket_address_init", r);
  } else {
    ASSERT_STR_EQ("::1", sa.address);
    ASSERT_EQ(80, sa.port);
  }
  if ((r = cnet_socket_address_parse(&sa, "[::1]:123")) < 0) {
    note_sync("cnet_socket_address_parse", r);
  } else {
    ASSERT_EQ(123, sa.port);
    ASSERT_EQ(9, cnet_socket_address_format(&sa, buf, sizeof(buf)));
    ASSERT_STR_EQ("[::1]:123", buf);
  }
}

/* af04: a StringDecoder is a plain value: it works with every allocation
 * failing, and allocates nothing. */
static void decoder_check(void) {
  long before = A.calls;
  cnet_decoder_t d;
  char out[32];
  size_t n;

  ASSERT_EQ(0, cnet_decoder_init(&d, "utf8"));
  ASSERT_EQ(0, cnet_decoder_write(&d, "\xe2\x82", 2, out));
  n = cnet_decoder_write(&d, "\xac!", 2, out);
  ASSERT_EQ(4, n);
  ASSERT_MEM_EQ("\xe2\x82\xac!", out, 4);
  ASSERT_EQ(0, cnet_decoder_write(&d, "\xf0", 1, out));
  n = cnet_decoder_end(&d, out);
  ASSERT_EQ(3, n);
  ASSERT_MEM_EQ("\xef\xbf\xbd", out, 3);
  ASSERT_EQ(0, cnet_decoder_init(&d, "base64"));
  n = cnet_decoder_write(&d, "ab", 2, out);
  n += cnet_decoder_end(&d, out + n);
  ASSERT_EQ(4, n);
  ASSERT_MEM_EQ("YWI=", out, 4);
  ASSERT_EQ(before, A.calls);
}

/* ---- one run ------------------------------------------------------------- */

#define ECHO_TOTAL (200 + 3000 + 20000 + 7)
#define QUEUE_TOTAL (8 * 64 + 4096 + 40 * 32 * 1024)

static bool echo_complete(void) {
  int good = 0;

  for (int i = 0; i < R.nclients; i++) {
    flow_t *c = &R.cli[i];
    if (!c->got_end || c->error || c->timed_out || c->write_failed ||
        c->written != ECHO_TOTAL || c->acked != ECHO_TOTAL ||
        c->received != ECHO_TOTAL)
      return false;
  }
  for (int i = 0; i < R.nsconn; i++)
    if (R.sconn[i].received == ECHO_TOTAL && R.sconn[i].got_end &&
        !R.sconn[i].error)
      good++;
  return good == R.nclients;
}

static bool scenario_complete(void) {
  const flow_t *c = &R.cli[0];
  const flow_t *s = &R.sconn[0];

  switch (R.sc) {
  case SC_TCP:
  case SC_UNIX:
  case SC_LOOKUP:
    return echo_complete();
  case SC_QUEUE:
    return R.nsconn == 1 && c->got_end && !c->error && !c->timed_out &&
           c->written == QUEUE_TOTAL && c->acked == QUEUE_TOTAL &&
           c->received == QUEUE_TOTAL && s->received == QUEUE_TOTAL &&
           s->got_end && !s->error && R.releases == 1;
  case SC_TEXT:
    return R.nsconn == 1 && c->got_end && !c->error && !c->timed_out &&
           c->received == strlen(expected_text()) && !c->bad_tail &&
           s->received == strlen(expected_text()) && s->got_end &&
           !s->error && R.timeouts >= 1;
  }
  return false;
}

static void print_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "  handle %p: %s%s%s%s\n", (void *)h,
          uv_handle_type_name(uv_handle_get_type(h)),
          uv_is_active(h) ? " active" : "", uv_has_ref(h) ? " ref" : "",
          uv_is_closing(h) ? " closing" : "");
}

static void count_handle(uv_handle_t *h, void *arg) {
  (void)h;
  (*(int *)arg)++;
}

static void count_active(uv_handle_t *h, void *arg) {
  if (h != (uv_handle_t *)&R.watchdog && uv_is_active(h))
    (*(int *)arg)++;
}

/* Every WATCH_MS: a run that has finished, has no active handle and still
 * cannot end because libuv counts a request that will never complete is
 * libuv's uv_write2 leak (it registers the request, then returns ENOMEM
 * when the buffer array cannot be allocated, without unregistering it);
 * after RUN_WATCHDOG_MS anything else still running is a hang. */
static void on_watchdog(uv_timer_t *t) {
  static int ticks, stuck;
  int active = 0;

  (void)t;
  uv_walk(&R.loop, count_active, &active);
  if (R.finished && active == 0 && R.loop.active_reqs.count != 0 &&
      A.libuv_direct_fail)
    stuck++;
  else
    stuck = 0;
  if (stuck >= 6) {
    fprintf(stderr, "[%s] libuv request leak: %u request(s) counted, none "
            "pending\n", R.label, R.loop.active_reqs.count);
    RES->abort_kind = AB_LIBUV_REQ;
    memcpy(RES->fail_frames, A.fail_frames, sizeof(A.fail_frames));
    RES->nfail_frames = A.nfail_frames;
    RES->allocs = A.calls;
    RES->injected = A.injected;
    fflush(stderr);
    _exit(5);
  }
  if (++ticks * WATCH_MS < RUN_WATCHDOG_MS)
    return;
  fprintf(stderr, "[%s] hang: the loop still runs after %d ms; handles:\n",
          R.label, RUN_WATCHDOG_MS);
  uv_walk(&R.loop, print_handle, NULL);
  for (int i = 0; i < R.nclients; i++)
    fprintf(stderr, "  client %d: %s, written %llu, acked %llu, received "
            "%llu%s%s%s\n", i, R.cli[i].closed ? "closed" : "open",
            (unsigned long long)R.cli[i].written,
            (unsigned long long)R.cli[i].acked,
            (unsigned long long)R.cli[i].received,
            R.cli[i].got_end ? ", end" : "", R.cli[i].error ? ", error" : "",
            R.cli[i].s != NULL && cnet_socket_destroyed(R.cli[i].s)
                ? ", destroyed" : "");
  for (int i = 0; i < R.nsconn; i++)
    if (R.sconn[i].s != NULL)
      fprintf(stderr, "  accepted %d: %s, bytes written %llu, queued %zu\n",
              i, cnet_socket_ready_state(R.sconn[i].s),
              (unsigned long long)cnet_socket_bytes_written(R.sconn[i].s),
              cnet_socket_writable_length(R.sconn[i].s));
  for (int i = 0; i < R.nclients; i++)
    if (R.cli[i].s != NULL)
      fprintf(stderr, "  client %d: %s, paused %d, bytes read %llu\n", i,
              cnet_socket_ready_state(R.cli[i].s),
              cnet_socket_is_paused(R.cli[i].s),
              (unsigned long long)cnet_socket_bytes_read(R.cli[i].s));
  for (int i = 0; i < R.nsconn; i++)
    fprintf(stderr, "  accepted %d: %s, received %llu%s%s%s%s\n", i,
            R.sconn[i].closed ? "closed" : "open",
            (unsigned long long)R.sconn[i].received,
            R.sconn[i].got_end ? ", end" : "",
            R.sconn[i].error ? ", error" : "",
            R.sconn[i].s != NULL && cnet_socket_is_paused(R.sconn[i].s)
                ? ", paused" : "",
            R.sconn[i].s != NULL && cnet_socket_destroyed(R.sconn[i].s)
                ? ", destroyed" : "");
  fprintf(stderr, "  active requests: %u\n  errors: %s\n",
          R.loop.active_reqs.count, RES->errors);
  RES->hang = true;
  RES->allocs = A.calls;
  RES->injected = A.injected;
  fflush(stderr);
  _exit(4);
}

static const char *run_path; /* af02's socket path, made by the campaign */

static void run_scenario(scen_t sc, const char *label) {
  int r, n = 0;

  memset(&R, 0, sizeof(R));
  R.sc = sc;
  R.path = run_path;
  R.nclients = sc == SC_TCP || sc == SC_UNIX ? NCLI : 1;
  snprintf(R.label, sizeof(R.label), "%s", label);
  harness_current = R.label;
  cnet_set_unhandled_error_handler(on_unhandled, NULL);
  if (sc == SC_TEXT)
    decoder_check();
  if ((r = uv_loop_init(&R.loop)) != 0) {
    cnet_error_t e;
    ASSERT_EQ(UV_ENOMEM, r);
    memset(&e, 0, sizeof(e));
    e.errnum = r;
    e.code = "ENOMEM";
    snprintf(e.message, sizeof(e.message), "uv_loop_init ENOMEM");
    note_error("uv_loop_init", &e);
  } else {
    ASSERT_EQ(0, uv_timer_init(&R.loop, &R.watchdog));
    ASSERT_EQ(0,
              uv_timer_start(&R.watchdog, on_watchdog, WATCH_MS, WATCH_MS));
    uv_unref((uv_handle_t *)&R.watchdog);
    ASSERT_EQ(0, uv_timer_init(&R.loop, &R.delay));
    R.delay_open = true;
    if (sc == SC_LOOKUP)
      block_list_and_addresses();
    setup_server();
    uv_run(&R.loop, UV_RUN_DEFAULT);
    /* Nothing is left to wait for, yet the scenario is not over: an event
     * that should have come (a 'close', a 'listening') never did. */
    if (!R.finished)
      FAIL("the loop ran out of work before the scenario ended (an event "
           "was lost); errors: %s",
           RES->errors);
    uv_close((uv_handle_t *)&R.watchdog, NULL);
    uv_run(&R.loop, UV_RUN_DEFAULT);
    uv_walk(&R.loop, count_handle, &n);
    if (n != 0) {
      fprintf(stderr, "[%s] handles left on a finished loop:\n", R.label);
      uv_walk(&R.loop, print_handle, NULL);
      FAIL("%d handles left after every object was freed", n);
    }
    ASSERT_EQ(0, uv_loop_close(&R.loop));
  }
  if (R.bl != NULL)
    cnet_block_list_free(R.bl);

  RES->allocs = A.calls;
  RES->injected = A.injected;
  RES->complete = scenario_complete();
  if (sc == SC_QUEUE)
    snprintf(RES->note, sizeof(RES->note),
             "%d client writes queued, the echo queued up to %zu bytes",
             R.queued, R.max_echo_queue);
  /* Leaks: every block handed out has come back. */
  if (A.live_blocks != 0)
    FAIL("leak: %ld blocks (%lld bytes) still allocated after the loop "
         "closed",
         A.live_blocks, (long long)A.live_bytes);
  /* af03: an owned buffer is released exactly once if it was taken. */
  ASSERT_EQ(R.owned_taken ? 1 : 0, R.releases);
  /* Bytes a write callback said were sent reach a peer that sees a clean
   * end (the server checked every one it got). */
  for (int i = 0; i < R.nsconn; i++) {
    const flow_t *s = &R.sconn[i];
    if (sc != SC_TEXT && s->id != 0 && s->got_end && !s->error &&
        s->received < R.cli[s->id - 1].acked)
      FAIL("lost data: server connection %d saw a clean end after %llu "
           "bytes, client %d was told %llu were sent",
           i, (unsigned long long)s->received, s->id,
           (unsigned long long)R.cli[s->id - 1].acked);
  }
  if (A.injected == 0) { /* the positive control, and the counting pass */
    if (!RES->complete || R.surfaced != 0)
      FAIL("no allocation failed, yet the scenario %s (errors: %s)",
           RES->complete ? "reported errors" : "did not complete",
           RES->errors);
  } else if (!RES->complete) {
    if (R.surfaced == 0)
      FAIL("an allocation failed and the scenario did not complete, but no "
           "error reached the application (silent loss)");
    if (R.enomem == 0)
      FAIL("the scenario failed for want of memory, but no error said "
           "ENOMEM/ENOBUFS: %s",
           RES->errors);
  }
  RES->done = true;
}

/* ---- the campaign: every N, each in a child ------------------------------ */

typedef struct {
  int kind;          /* AB_* or, for FAIL and hangs, -1 / -2 */
  void *key[4];      /* allocation site (failure) and abort site */
  int line;          /* FAIL's line in this file */
  long first_n;
  int first_mode;
  int count;
  char ns[160];      /* the N's, abbreviated */
} site_t;

static site_t sites[64];
static int nsites;

/* One frame, with file and line; false past the campaign's own frames. */
static bool symbolize(void *addr) {
  Dl_info di;
  char cmd[600], line[400], exe[300];
  const char *file;
  uintptr_t off;
  FILE *p;

  bool more = true;

  if (dladdr(addr, &di) == 0 || di.dli_fname == NULL) {
    fprintf(stderr, "    %p ?\n", addr);
    return true;
  }
  off = (uintptr_t)addr - (uintptr_t)di.dli_fbase - 1; /* the call, not the
                                                           return address */
  if (in_object(addr, "libuv")) { /* no debug info: names would mislead */
    fprintf(stderr, "    libuv.so.1+0x%lx\n", (unsigned long)off);
    return true;
  }
  if (is_exe(addr)) { /* addr2line's own /proc/self/exe is addr2line */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    file = exe;
  } else {
    file = di.dli_fname;
  }
  snprintf(cmd, sizeof(cmd), "addr2line -f -i -p -e %s 0x%lx 2>/dev/null",
           file, (unsigned long)off);
  if ((p = popen(cmd, "r")) == NULL)
    return false;
  while (fgets(line, sizeof(line), p) != NULL) {
    if (strncmp(line, "run_one ", 8) == 0)
      more = false;
    fprintf(stderr, "    %s+0x%lx: %s", strrchr(di.dli_fname, '/') != NULL
                                            ? strrchr(di.dli_fname, '/') + 1
                                            : di.dli_fname,
            (unsigned long)off, line);
  }
  pclose(p);
  return more;
}

static void print_stack(const char *what, void *const *fr, int n) {
  fprintf(stderr, "  %s:\n", what);
  for (int i = 1; i < n && i < 24 && symbolize(fr[i]); i++)
    ;
}

static void dump_log(const char *log) {
  char buf[6000];
  FILE *f = fopen(log, "r");
  size_t n;

  if (f == NULL)
    return;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  if (n != 0)
    fprintf(stderr, "  --- the run's stderr ---\n%s  ---\n", buf);
}

static int fail_line(const char *log) {
  char buf[6000], *p;
  FILE *f = fopen(log, "r");
  size_t n;

  if (f == NULL)
    return 0;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  p = strstr(buf, "test-alloc-failure.c:");
  return p != NULL ? atoi(p + strlen("test-alloc-failure.c:")) : 0;
}

/* One finding (or skip); the first of each kind and site is printed in
 * full, the rest only counted. */
static void record_site(const char *name, int kind, const result_t *r,
                        long n, int mode, const char *log, int status) {
  site_t *s = NULL;
  void *key[4] = {0};
  int line = kind < 0 ? fail_line(log) : 0;
  size_t len;

  if (kind > 0) {
    int j = 0; /* the allocator's caller, and two frames above it */
    while (j < r->nfail_frames && r->fail_frames[j] != r->fail_caller)
      j++;
    for (int i = 0; i < 3 && j + i < r->nfail_frames; i++)
      key[i] = r->fail_frames[j + i];
    for (int i = 1; i < r->nabort_frames; i++)
      if (!is_libc(r->abort_frames[i]) &&
          r->abort_frames[i] != (void *)on_fatal_signal) {
        key[3] = r->abort_frames[i];
        break;
      }
  }
  for (int i = 0; i < nsites; i++)
    if (sites[i].kind == kind && sites[i].line == line &&
        memcmp(sites[i].key, key, sizeof(key)) == 0)
      s = &sites[i];
  if (s == NULL && nsites < (int)ARRAY_LEN(sites)) {
    s = &sites[nsites++];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->line = line;
    memcpy(s->key, key, sizeof(key));
    s->first_n = n;
    s->first_mode = mode;
  }
  if (s != NULL && s->count == 0 && kind != AB_CNET_XMALLOC &&
      kind != AB_LIBUV_OOM) { /* expected ones: only the summary line */
    fprintf(stderr,
            "[%s] N=%ld (%s): %s (status 0x%x; %ld allocation calls, %ld "
            "failed)\n",
            name, n, mode_name[mode],
            kind > 0    ? abort_name[kind]
            : kind == -2 ? "hang"
                         : "check failed",
            status, r->allocs, r->injected);
    if (r->nfail_frames != 0)
      print_stack("where the allocation failed (most recent injected failure)",
                  r->fail_frames, r->nfail_frames);
    if (kind > 0 && kind != AB_LIBUV_REQ)
      print_stack("where the process died", r->abort_frames,
                  r->nabort_frames);
    dump_log(log);
  }
  if (s == NULL)
    return;
  s->count++;
  len = strlen(s->ns);
  if (len < sizeof(s->ns) - 16)
    snprintf(s->ns + len, sizeof(s->ns) - len, "%s%ld%s", len ? "," : "", n,
             mode == MODE_AFTER ? "+" : "");
}

typedef struct {
  int completed, clean, skipped, aborted, findings;
} tally_t;

static result_t *run_one(scen_t sc, const char *name, long n, int mode,
                         int *status, const char *log) {
  char label[96], path[64];
  pid_t pid;

  snprintf(label, sizeof(label), "%s N=%ld %s", name, n, mode_name[mode]);
  snprintf(path, sizeof(path), "/tmp/cnet-af-%ld-%ld%c.sock", (long)getpid(),
           n, mode == MODE_AFTER ? 'a' : 'n');
  unlink(path);
  run_path = path;
  memset(RES, 0, sizeof(*RES));
  if (getenv("AF_NO_FORK") != NULL) { /* under a debugger */
    A.fail_at = n;
    A.mode = mode;
    run_scenario(sc, label);
    *status = 0;
    return RES;
  }
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = log != NULL ? open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
    if (fd >= 0) {
      dup2(fd, 2);
      close(fd);
    }
    signal(SIGALRM, SIG_DFL);
    alarm(RUN_ALARM_S);
    signal(SIGABRT, on_fatal_signal);
#if !defined(__SANITIZE_ADDRESS__)
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
#endif
    A.fail_at = n;
    A.mode = mode;
    run_scenario(sc, label);
    fflush(stdout);
    fflush(stderr);
    exit(0); /* ASan: the leak check */
  }
  while (waitpid(pid, status, 0) < 0)
    ASSERT_EQ(EINTR, errno);
  unlink(path);
  return RES;
}

/* Judge one run: true unless it is a finding. */
static bool judge(const char *name, const result_t *r, long n, int mode,
                  int status, const char *log, tally_t *t) {
  int kind;

  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && r->done) {
    if (r->complete)
      t->completed++;
    else
      t->clean++;
    return true;
  }
  if ((WIFSIGNALED(status) ||
       (WIFEXITED(status) && WEXITSTATUS(status) == 5)) &&
      r->abort_kind != AB_NONE)
    kind = r->abort_kind;
  else if (WIFEXITED(status) && WEXITSTATUS(status) == 4)
    kind = -2;
  else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
    kind = -2;
  else if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
    kind = -1;
  else
    kind = AB_OTHER; /* a crash, or the sanitizer's exit code */
  record_site(name, kind, r, n, mode, log, status);
  if (kind == AB_LIBUV_OOM || kind == AB_LIBUV_REQ) {
    t->skipped++; /* libuv's own limits, documented at the top */
    return true;
  }
  if (kind == AB_CNET_XMALLOC) {
    t->aborted++; /* decision 34 */
    return true;
  }
  t->findings++;
  return false;
}

static void campaign(scen_t sc, const char *name) {
  result_t *r;
  char log[64];
  const char *only = getenv("AF_ONLY_N");
  const char *mode_env = getenv("AF_MODE");
  long total;
  int status, findings = 0;
  void *frames[4];

  if (getenv("CNET_UNDER_VALGRIND") != NULL) {
    /* Hundreds of forked runs per campaign: minutes under valgrind. They
     * run in make test and, with ASan and LeakSanitizer, in make asan. */
    printf("# skip: %s under valgrind\n", name);
    return;
  }
  alarm(90); /* the harness's 10 s is per case; a campaign is many runs */
  (void)backtrace(frames, 4); /* loads libgcc_s now, not in the allocator */
  if (RES == NULL) {
    RES = mmap(NULL, sizeof(*RES), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(RES != MAP_FAILED);
  }
  /* Installed in the case's process, before any loop: every run inherits
   * it (no allocation goes through it here). */
  ASSERT_EQ(0, cnet_replace_allocator(af_malloc, af_realloc, af_calloc,
                                      af_free));
  snprintf(log, sizeof(log), "/tmp/cnet-af-%ld.log", (long)getpid());
  nsites = 0;

  if (only != NULL) {
    int mode = mode_env != NULL && strcmp(mode_env, "after") == 0;
    r = run_one(sc, name, atol(only), mode, &status, NULL);
    printf("# [%s] N=%s %s: status 0x%x, done %d, complete %d, %ld calls, "
           "%ld failed; errors: %s\n",
           name, only, mode_name[mode], status, r->done, r->complete,
           r->allocs, r->injected, r->errors);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return;
  }

  /* The counting pass: nothing fails, everything must work. */
  r = run_one(sc, name, 0, MODE_NTH, &status, log);
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 && r->done &&
        r->complete)) {
    dump_log(log);
    FAIL("the counting pass failed (status 0x%x)", status);
  }
  total = r->allocs;
  printf("# [%s] %ld allocation calls in a run%s%s\n", name, total,
         r->note[0] ? "; " : "", r->note);

  for (int mode = MODE_NTH; mode <= MODE_AFTER; mode++) {
    tally_t t = {0};
    for (long n = 1; n <= total; n++) {
      r = run_one(sc, name, n, mode, &status, log);
      if (!judge(name, r, n, mode, status, log, &t))
        findings++;
    }
    printf("# [%s] %s: N=1..%ld: %d completed anyway, %d failed cleanly "
           "(error reported, nothing lost), %d skipped (libuv aborts), %d "
           "cnet out-of-memory aborts, %d findings\n",
           name, mode_name[mode], total, t.completed, t.clean, t.skipped,
           t.aborted, t.findings);
  }
  for (int i = 0; i < nsites; i++) {
    char what[64];
    if (sites[i].kind > 0)
      snprintf(what, sizeof(what), "%s", abort_name[sites[i].kind]);
    else if (sites[i].kind == -2)
      snprintf(what, sizeof(what), "hang");
    else
      snprintf(what, sizeof(what), "check failed at line %d", sites[i].line);
    printf("# [%s] %s: %d run(s), first N=%ld (%s); N (+: fail after): "
           "%s\n",
           name, what, sites[i].count, sites[i].first_n,
           mode_name[sites[i].first_mode], sites[i].ns);
  }

  /* The positive control: N past the count fails nothing. */
  r = run_one(sc, name, 2 * total + 100, MODE_NTH, &status, log);
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 && r->done &&
        r->complete && r->injected == 0)) {
    dump_log(log);
    FAIL("the positive control failed (status 0x%x)", status);
  }
  unlink(log);
  ASSERT_EQ(0, findings);
}

TEST_CASE(af01_tcp_echo) {
  campaign(SC_TCP, "af01");
}

TEST_CASE(af02_unix_echo) {
  campaign(SC_UNIX, "af02");
}

TEST_CASE(af03_queued_writes) {
  campaign(SC_QUEUE, "af03");
}

TEST_CASE(af04_timeout_encoding) {
  campaign(SC_TEXT, "af04");
}

TEST_CASE(af05_lookup_block_list) {
  campaign(SC_LOOKUP, "af05");
}

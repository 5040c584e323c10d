/* Node's error objects: the code table, the five message builders of
 * lib/internal/errors.js, the thread-local last error and the handler for
 * 'error' events nobody listens to. */
#include "internal.h"

#include <stdio.h>

static _Thread_local cnet_error_t last_error;

static void default_unhandled(const char *what, const cnet_error_t *err,
                              void *ctx) {
  (void)ctx;
  fprintf(stderr, "cnet: unhandled 'error' event on a %s: %s\n", what,
          err->message);
}

static cnet_unhandled_error_fn unhandled_fn = default_unhandled;
static void *unhandled_ctx;

/* Never allocates: libuv's uv_err_name() leaks for unknown codes, so walk
 * UV_ERRNO_MAP ourselves. */
const char *cnet_err_name(int err) {
  switch (err) {
#define XX(code, fmt)                                                          \
  case CNET_##code:                                                            \
    return #code;
    CNET_NODE_ERROR_MAP(XX)
#undef XX
#define XX(code, msg)                                                          \
  case UV_##code:                                                              \
    return #code;
    UV_ERRNO_MAP(XX)
#undef XX
  }
  return "UNKNOWN";
}

const char *cnet_strerror(int err) {
  switch (err) {
#define XX(code, fmt)                                                          \
  case CNET_##code:                                                            \
    return fmt;
    CNET_NODE_ERROR_MAP(XX)
#undef XX
#define XX(code, msg)                                                          \
  case UV_##code:                                                              \
    return msg;
    UV_ERRNO_MAP(XX)
#undef XX
  }
  return "unknown error";
}

const cnet_error_t *cnet_last_error(void) {
  if (last_error.code == NULL)
    last_error.code = "OK";
  return &last_error;
}

void cnet_set_unhandled_error_handler(cnet_unhandled_error_fn fn, void *ctx) {
  unhandled_fn = fn != NULL ? fn : default_unhandled;
  unhandled_ctx = fn != NULL ? ctx : NULL;
}

void cnet__unhandled_error(const char *what, const cnet_error_t *err) {
  unhandled_fn(what, err, unhandled_ctx);
}

static void error_init(cnet_error_t *e, int err, const char *syscall) {
  memset(e, 0, offsetof(cnet_error_t, local_address));
  e->local_address[0] = '\0';
  e->hostname[0] = '\0';
  e->message[0] = '\0';
  e->errnum = err;
  e->code = cnet_err_name(err);
  e->syscall = syscall;
}

static void copy_text(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* "read ECONNRESET" */
void cnet__error_errno(cnet_error_t *e, int err, const char *syscall) {
  error_init(e, err, syscall);
  snprintf(e->message, sizeof(e->message), "%s %s", syscall, e->code);
}

/* "connect ECONNREFUSED 127.0.0.1:8124 - Local (127.0.0.1:5000)"; the port
 * only when non-zero, the local part when the caller knows one. */
void cnet__error_host_port(cnet_error_t *e, int err, const char *syscall,
                           const char *address, int port,
                           const char *details) {
  char where[CNET_ADDR_MAX + 16] = "";
  char local[CNET_ADDR_MAX + 24] = "";

  error_init(e, err, syscall);
  copy_text(e->address, sizeof(e->address), address);
  e->port = port;
  if (port > 0)
    snprintf(where, sizeof(where), " %s:%d", e->address, port);
  else if (e->address[0] != '\0')
    snprintf(where, sizeof(where), " %s", e->address);
  if (details != NULL)
    snprintf(local, sizeof(local), " - Local (%s)", details);
  snprintf(e->message, sizeof(e->message), "%s %s%s%s", syscall, e->code,
           where, local);
}

/* "listen EADDRINUSE: address already in use :::8124"; a path (port -1)
 * without a port, nothing after the description when there is no address. */
void cnet__error_listen(cnet_error_t *e, int err, const char *address,
                        int port) {
  char where[CNET_ADDR_MAX + 16] = "";

  error_init(e, err, "listen");
  copy_text(e->address, sizeof(e->address), address);
  e->port = port;
  if (e->address[0] != '\0' && port > 0)
    snprintf(where, sizeof(where), " %s:%d", e->address, port);
  else if (e->address[0] != '\0')
    snprintf(where, sizeof(where), " %s", e->address);
  snprintf(e->message, sizeof(e->message), "listen %s: %s%s", e->code,
           cnet_strerror(err), where);
}

/* "getaddrinfo ENOTFOUND nosuch.example": Node invents ENOTFOUND for the
 * two "no such name" answers. */
void cnet__error_dns(cnet_error_t *e, int err, const char *hostname) {
  error_init(e, err, "getaddrinfo");
  if (err == UV_EAI_NONAME || err == UV_EAI_NODATA)
    e->code = "ENOTFOUND";
  copy_text(e->hostname, sizeof(e->hostname), hostname);
  snprintf(e->message, sizeof(e->message), "getaddrinfo %s %s", e->code,
           e->hostname);
}

/* ERR_* with the table's message, formatted with the arguments given. */
static void error_vnode(cnet_error_t *e, int code, va_list ap) {
  error_init(e, code, NULL);
  vsnprintf(e->message, sizeof(e->message), cnet_strerror(code), ap);
}

void cnet__error_node(cnet_error_t *e, int code, ...) {
  va_list ap;

  va_start(ap, code);
  error_vnode(e, code, ap);
  va_end(ap);
}

void cnet__error_custom(cnet_error_t *e, int err, const char *message) {
  error_init(e, err, NULL);
  copy_text(e->message, sizeof(e->message), message);
}

int cnet__fail(int code, ...) {
  va_list ap;

  va_start(ap, code);
  error_vnode(&last_error, code, ap);
  va_end(ap);
  return code;
}

int cnet__fail_errno(int err, const char *syscall) {
  cnet__error_errno(&last_error, err, syscall);
  return err;
}

int cnet__fail_error(const cnet_error_t *e) {
  last_error = *e;
  return e->errnum;
}

/* Node's validatePort for a C int: "Received type number (65536)". */
int cnet__check_port(int port, const char *name) {
  char received[32];

  if (port >= 0 && port <= 65535)
    return 0;
  snprintf(received, sizeof(received), "type number (%d)", port);
  return cnet__fail(CNET_ERR_SOCKET_BAD_PORT, name, received);
}

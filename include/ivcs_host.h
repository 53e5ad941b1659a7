/*
 * ivcs_host.h - libivcs settings that the original SDK took from its system
 * module: cloud URL, device id and secret, engine file, trusted CA, logging.
 *
 * All optional. A value not set here comes from the environment
 * (IVCS_CLOUD_URL, IVCS_DEVICE_ID, IVCS_DEVICE_SECRET, IVCS_ENGINE,
 * IVCS_CA_FILE, IVCS_LOG_LEVEL) or from the key = value file named by
 * IVCS_CONFIG, so firmware that never calls these works unchanged.
 * See docs/guide/firmware.md.
 *
 * Call the setters before the first iv_cs_* call. Afterwards the cloud URL,
 * device id/secret and CA file still apply while cloud storage is not
 * initialised (IV_ERR_CS_INIT_REPEAT during a session); the engine file
 * needs ivcs_host_shutdown() first. A NULL string clears the value (back to
 * environment and file). Every function returns an iv_err_code_e.
 */
#ifndef IVCS_HOST_H
#define IVCS_HOST_H

#include "iv_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels, most severe first. The default is IVCS_LOG_WARN. */
#define IVCS_LOG_ERROR 0
#define IVCS_LOG_WARN 1
#define IVCS_LOG_INFO 2
#define IVCS_LOG_DEBUG 3
#define IVCS_LOG_TRACE 4

/*
 * Receives one log line (no trailing newline) on the library's callback
 * thread; the string is valid until it returns. It may call iv_cs_*.
 */
typedef void (*ivcs_host_log_cb)(int level, const char *message, void *user);

/* "https://host[:port][/prefix]" of the ivcs cloud. */
int ivcs_host_set_cloud_url(const char *url);
/* The device id registered in the cloud. */
int ivcs_host_set_device_id(const char *device_id);
/* The device secret ("ivcs cloud device add" prints it). */
int ivcs_host_set_device_secret(const char *secret);
/*
 * A precompiled engine (.cwasm from "ivcs engine compile") to run
 * instead of the one built into the library.
 */
int ivcs_host_set_engine_file(const char *path);
/*
 * PEM file with extra CA certificates to trust (e.g. a self-hosted cloud's
 * own CA), in addition to the built-in public roots. Certificate
 * verification cannot be turned off.
 */
int ivcs_host_set_ca_file(const char *path);
/* IVCS_LOG_ERROR .. IVCS_LOG_TRACE; others are IV_ERR_CS_INIT_PRM_RANGE. */
int ivcs_host_set_log_level(int level);
/* NULL: log to stderr (the default). */
int ivcs_host_set_log_callback(ivcs_host_log_cb cb, void *user);
/*
 * Ends cloud storage if initialised, stops the library's threads and frees
 * the engine; the next iv_cs_* call starts afresh. Optional (process exit
 * is fine); useful before unloading the library or for leak checkers.
 * Not from a callback (IV_ERR_CS_INIT_REPEAT).
 */
int ivcs_host_shutdown(void);
/* The library version, e.g. "0.1.0" (static storage). */
const char *ivcs_host_version(void);

#ifdef __cplusplus
}
#endif

#endif /* IVCS_HOST_H */

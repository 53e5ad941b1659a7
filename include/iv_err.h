/*
 * iv_err.h - error codes of the iv_* camera cloud API (ivcs).
 * Every iv_cs_* function returns IV_ERR_NONE or one of these.
 */
#ifndef IV_ERR_H
#define IV_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    IV_ERR_NONE = 0,

    /* System module (defined for firmware that references them). */
    IV_ERR_SYS_INIT_PRM_NULL = -100,
    IV_ERR_SYS_INIT_CB_NULL = -101,
    IV_ERR_SYS_INIT_PRM_RANGE = -102,
    IV_ERR_SYS_DEVICE_INFORMATION = -103,
    IV_ERR_SYS_DYNAMIC_REG_DEVIECE = -104, /* sic */
    IV_ERR_SYS_NOT_SUPPORT = -105,
    IV_ERR_SYS_NTP_NOT_AVAILABLE = -106,
    IV_ERR_SYS_FILE_OPT_FAIL = -107,
    IV_ERR_SYS_MALLOC_FAIL = -108,
    IV_ERR_SYS_COMMUNICATE_FAIL = -109,
    IV_ERR_SYS_COMMUNICATE_TIMEOUT = -110,
    IV_ERR_SYS_MAX_RETRY_COUNT = -111,

    /* Cloud storage. */
    IV_ERR_CS_INIT_PRM_NULL = -600,             /* init parameter is NULL */
    IV_ERR_CS_INIT_CB_NULL = -601,              /* start or stop callback is NULL */
    IV_ERR_CS_INIT_PRM_RANGE = -602,            /* a parameter is out of range or malformed */
    IV_ERR_CS_UPLOAD_AUTH_NOT_AVAILABLE = -603, /* not yet authorised by the cloud */
    IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL = -604,     /* upload object could not be opened */
    IV_ERR_CS_PRM_NOT_AVAILABLE = -605,         /* module not initialised */
    IV_ERR_CS_PRM_MALLOC_FAIL = -606,           /* out of buffer memory */
    IV_ERR_CS_APPLY_NO_SERVICE = -607,          /* no active plan */
    IV_ERR_CS_QUERY_SERVICE_TIMEOUT = -608,     /* blocking query timed out */
    IV_ERR_CS_EVENT_IS_VALID = -609,            /* event unknown, not started or running */
    IV_ERR_CS_INIT_REPEAT = -610,               /* already initialised */
    IV_ERR_CS_NEED_IDR_FRAME = -611,            /* frame refused: send an IDR next */
    IV_ERR_CS_NO_BALANCE = -612,                /* trial seconds used up */
    IV_ERR_CS_HTTP_DATA_FAIL = -613,            /* upload failed */

    IV_ERR_DEVICE_OFFLINE = -1001
} iv_err_code_e;

#ifdef __cplusplus
}
#endif

#endif /* IV_ERR_H */

/*
 * decimal.c - the Avro decimal logical type: decimal digits <-> two's-complement big-endian
 * bytes of the unscaled integer, at any size.
 *
 * Money never passes through a C double: a value arrives as its unscaled integer in decimal
 * digits plus a scale ("-12345", 2 is -123.45). Encoding rescales it to the schema's scale
 * (appending zeros, or dropping trailing zeros: never rounding), checks the precision, and
 * converts the digits to binary. Values of up to 18 digits take an int64 fast path; longer ones
 * (numeric(38,x) and beyond) are converted by schoolbook multiply-add on 32-bit limbs, nine
 * digits at a time. The result has the minimal length Java's BigInteger.toByteArray() gives (what every
 * Avro reader expects), or is sign-extended to the size of a fixed.
 */
#include "avro/avro_int.h"

#include <string.h>

#include "core/error.h"

/* Big-endian two's complement of v in the fewest bytes that keep its sign, into out[8].
 * Returns the length. */
static size_t int64_to_bytes(int64_t v, uint8_t out[8])
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[7 - i] = (uint8_t)((uint64_t)v >> (8 * i));
    size_t skip = 0;
    while (skip < 7) {
        uint8_t b = tmp[skip], next = tmp[skip + 1];
        if ((b == 0x00 && !(next & 0x80)) || (b == 0xFF && (next & 0x80)))
            skip++;
        else
            break;
    }
    memcpy(out, tmp + skip, 8 - skip);
    return 8 - skip;
}

int siphon_avro__decimal_to_bytes(siphon_buf_t *scratch, const char *digits, size_t len,
                                  int32_t scale, int precision, int to_scale, int fixed_size,
                                  const uint8_t **out, size_t *outlen, int *ndigits)
{
    const char *p = digits, *end = digits + len;
    int neg = 0;

    *ndigits = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == end)
        return SIPHON_DEC_MALFORMED;
    for (const char *q = p; q < end; q++)
        if (*q < '0' || *q > '9')
            return SIPHON_DEC_MALFORMED;

    /* Rescale: keep [p, end) then `zeros` more zeros. */
    int64_t zeros = 0;
    if (scale < to_scale) {
        zeros = (int64_t)to_scale - scale;
    } else if (scale > to_scale) {
        int64_t drop = (int64_t)scale - to_scale;
        for (int64_t k = 0; k < drop && end > p; k++) {
            if (end[-1] != '0')
                return SIPHON_DEC_SCALE;
            end--;
        }
    }
    while (p < end && *p == '0')
        p++;
    int64_t sig = (int64_t)(end - p);
    if (sig > 0)
        sig += zeros;
    if (sig > precision) {
        *ndigits = sig > 1000000000 ? 1000000000 : (int)sig;
        return SIPHON_DEC_PRECISION;
    }
    *ndigits = (int)sig;
    if (sig == 0)
        neg = 0;

    siphon_buf_reset(scratch);
    if (sig <= 18) {
        int64_t v = 0;
        for (const char *q = p; q < end; q++)
            v = v * 10 + (*q - '0');
        for (int64_t k = 0; k < zeros && sig > 0; k++)
            v *= 10;
        if (neg)
            v = -v;
        uint8_t b[8];
        size_t n = int64_to_bytes(v, b);
        size_t width = fixed_size > 0 ? (size_t)fixed_size : n;
        if (n > width)
            return SIPHON_DEC_FIXED_SIZE;
        if (siphon_buf_reserve(scratch, width) < 0)
            return SIPHON_DEC_NOMEM;
        memset(scratch->data, neg ? 0xFF : 0x00, width - n);
        memcpy(scratch->data + (width - n), b, n);
        scratch->len = width;
        *out = scratch->data;
        *outlen = width;
        return SIPHON_DEC_OK;
    }

    /* Arbitrary size: the magnitude in little-endian 32-bit limbs, fed nine decimal digits at
     * a time (mag = mag * 10^k + chunk), then spelled out as little-endian bytes. */
    size_t nlimbs = (size_t)(sig / 9) + 2;
    size_t cap = 4 * nlimbs + 1;  /* bytes of the magnitude, plus the sign byte */
    size_t limb_bytes = 4 * nlimbs + 8;
    if (siphon_buf_reserve(scratch, limb_bytes + 2 * cap) < 0)
        return SIPHON_DEC_NOMEM;
    uint32_t *limb = (uint32_t *)(void *)scratch->data; /* malloc'ed: aligned */
    size_t nl = 0;
    int64_t ndig = (int64_t)(end - p);
    for (int64_t k = 0; k < sig;) {
        int64_t take = k == 0 ? (sig % 9 ? sig % 9 : 9) : 9;
        uint32_t chunk = 0, mult = 1;
        for (int64_t q = 0; q < take; q++, k++) {
            chunk = chunk * 10 + (uint32_t)(k < ndig ? p[k] - '0' : 0);
            mult *= 10;
        }
        uint64_t carry = chunk;
        for (size_t i = 0; i < nl; i++) {
            uint64_t t = (uint64_t)limb[i] * mult + carry;
            limb[i] = (uint32_t)t;
            carry = t >> 32;
        }
        if (carry)
            limb[nl++] = (uint32_t)carry;
    }
    uint8_t *mag = scratch->data + limb_bytes;
    size_t n = 0;
    for (size_t i = 0; i < nl; i++)
        for (int b = 0; b < 4; b++)
            mag[n++] = (uint8_t)(limb[i] >> (8 * b));
    /* one more byte so the top bit is the sign */
    mag[n++] = 0;
    if (neg) {
        unsigned c = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned v = (uint8_t)~mag[i] + c;
            mag[i] = (uint8_t)v;
            c = v >> 8;
        }
    }
    /* drop redundant sign bytes from the top */
    while (n > 1) {
        uint8_t top = mag[n - 1], next = mag[n - 2];
        if ((top == 0x00 && !(next & 0x80)) || (top == 0xFF && (next & 0x80)))
            n--;
        else
            break;
    }
    size_t width = fixed_size > 0 ? (size_t)fixed_size : n;
    if (n > width)
        return SIPHON_DEC_FIXED_SIZE;
    size_t be_off = limb_bytes + cap;
    if (siphon_buf_reserve(scratch, be_off + width) < 0) /* a fixed wider than the magnitude */
        return SIPHON_DEC_NOMEM;
    mag = scratch->data + limb_bytes;
    uint8_t *be = scratch->data + be_off;
    memset(be, neg ? 0xFF : 0x00, width - n);
    for (size_t i = 0; i < n; i++)
        be[width - 1 - i] = mag[i];
    scratch->len = be_off + width;
    *out = be;
    *outlen = width;
    return SIPHON_DEC_OK;
}

int siphon_avro__decimal_from_bytes(siphon_buf_t *out, const uint8_t *p, size_t len, int scale)
{
    char small[32];
    char *digits = small;
    size_t nd = 0;
    int neg = len > 0 && (p[0] & 0x80);
    int rc = 0;
    uint8_t *mag = NULL;
    siphon_buf_t tmp = {0};

    if (len <= 8) {
        uint64_t u = neg ? UINT64_MAX : 0;
        for (size_t i = 0; i < len; i++)
            u = (u << 8) | p[i];
        uint64_t m = neg ? (uint64_t)0 - u : u; /* magnitude, also for INT64_MIN */
        char rev[24];
        do {
            rev[nd++] = (char)('0' + m % 10);
            m /= 10;
        } while (m);
        for (size_t i = 0; i < nd; i++)
            small[i] = rev[nd - 1 - i];
    } else {
        /* magnitude as big-endian bytes, then repeated division by 10^9 */
        if (siphon_buf_reserve(&tmp, len + len * 6 + 40) < 0)
            return SIPHON_ENOMEM;
        mag = tmp.data;
        memcpy(mag, p, len);
        if (neg) {
            unsigned c = 1;
            for (size_t i = len; i-- > 0;) {
                unsigned v = (uint8_t)~mag[i] + c;
                mag[i] = (uint8_t)v;
                c = v >> 8;
            }
        }
        char *rev = (char *)tmp.data + len;
        size_t start = 0;
        for (;;) {
            while (start < len && mag[start] == 0)
                start++;
            if (start == len)
                break;
            uint64_t rem = 0;
            for (size_t i = start; i < len; i++) {
                uint64_t cur = (rem << 8) | mag[i];
                mag[i] = (uint8_t)(cur / 1000000000u);
                rem = cur % 1000000000u;
            }
            int more = 0;
            for (size_t i = start; i < len; i++)
                if (mag[i]) {
                    more = 1;
                    break;
                }
            for (int k = 0; k < 9 && (more || rem); k++) {
                rev[nd++] = (char)('0' + rem % 10);
                rem /= 10;
            }
        }
        if (nd == 0)
            rev[nd++] = '0';
        digits = rev + nd; /* after the reversed digits, still inside tmp */
        for (size_t i = 0; i < nd; i++)
            digits[i] = rev[nd - 1 - i];
    }

    /* digits[0..nd) is the magnitude; place the point */
    if (neg && !(nd == 1 && digits[0] == '0'))
        rc |= siphon_buf_appendc(out, '-');
    if (scale <= 0) {
        rc |= siphon_buf_append(out, digits, nd);
        for (int k = 0; k < -scale; k++)
            rc |= siphon_buf_appendc(out, '0');
    } else if ((size_t)scale >= nd) {
        rc |= siphon_buf_append(out, "0.", 2);
        for (size_t k = nd; k < (size_t)scale; k++)
            rc |= siphon_buf_appendc(out, '0');
        rc |= siphon_buf_append(out, digits, nd);
    } else {
        rc |= siphon_buf_append(out, digits, nd - (size_t)scale);
        rc |= siphon_buf_appendc(out, '.');
        rc |= siphon_buf_append(out, digits + nd - scale, (size_t)scale);
    }
    siphon_buf_free(&tmp);
    return rc ? SIPHON_ENOMEM : 0;
}

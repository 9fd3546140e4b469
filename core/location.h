/* location.h - the region > district > village hierarchy.
 *
 * Locations are created on first use (registration or import) and never renamed in place here. Paths are
 * "Region/District/Village"; search by location matches a path or any path below it.
 */
#ifndef HF_CORE_LOCATION_H
#define HF_CORE_LOCATION_H

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"

#define LOCATION_PATH_MAX 320

/* Finds or creates the three levels; *village_id_out is the village's id. Names must be validated
 * (validate_place_name) by the caller. Safe against concurrent creators (unique path + re-read). */
HF_MUST_CHECK hf_err location_resolve(struct db *db, const char *region, const char *district, const char *village,
				      int64_t *village_id_out);

#endif

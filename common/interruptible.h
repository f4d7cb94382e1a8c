// Sleeps that end early when a stop is requested, so every probe loop stops promptly.
#pragma once

#include <stop_token>

#include "common/clock.h"

namespace ghostwatch {

// Sleeps until `deadline` on the steady clock. Returns false when stopped before the deadline.
bool sleep_until(std::stop_token stop, MonoTime deadline);
bool sleep_for(std::stop_token stop, Duration d);

}  // namespace ghostwatch

// The one translation unit that compiles Boost.Process v2: its header-only
// mode is broken in Boost 1.81 (see BUILD-NOTES), so every user links this.
#ifndef BOOST_PROCESS_V2_SEPARATE_COMPILATION
#define BOOST_PROCESS_V2_SEPARATE_COMPILATION
#endif
#include <boost/process/v2/src.hpp>

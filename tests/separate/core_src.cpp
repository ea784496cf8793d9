// cz/core compiled once, for a program that uses core proper only (linked with cz-core alone).
#include <cz/core/src.hpp>

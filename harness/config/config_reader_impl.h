#pragma once
// Template definitions of ConfigReader (included by config.h). Implemented with the foundation issue.

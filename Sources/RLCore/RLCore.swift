// The tensor core. See README "Code layout".

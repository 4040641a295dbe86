/* "meshcoord policy check|show": the policy file read and compiled as the server would,
 * against the registry's nodes, without touching anything (a dry run). */
#ifndef MESHCOORD_POLICY_CLI_H
#define MESHCOORD_POLICY_CLI_H

/* argv[0] is "policy"; config_path is the global -c default. Returns the exit status: 0,
 * 1 (the policy is invalid, or an error, one line each on stderr) or 2 (usage). */
int policy_cli(const char *config_path, int argc, char **argv);

#endif

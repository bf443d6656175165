// Command compose-config is `docker compose config` without Docker: it loads a compose file
// with compose-go, the library the Compose CLI is built on, and prints the normalized
// project as JSON. Loading applies the compose-spec JSON schema, interpolation (a
// `${VAR:?message}` with no value fails with the message), profiles and env files, so CI can
// check docker-compose.yml on a machine without a Docker engine. Without -profile, the
// profiles come from COMPOSE_PROFILES in the environment or an env file, as in the CLI.
//
//	compose-config [-env-file F]... [-profile P]... docker-compose.yml
//
// Errors go to stderr with exit status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compose-config:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("compose-config", flag.ContinueOnError)
	var envFiles, profiles listFlag
	flags.Var(&envFiles, "env-file", "env file for interpolation, repeatable (default: .env beside the compose file, if present)")
	flags.Var(&profiles, "profile", "profile to enable, repeatable")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return fmt.Errorf("one compose file expected")
	}
	file, err := filepath.Abs(flags.Arg(0))
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
	)
	if err != nil {
		return err
	}
	// Like the Compose CLI: without -profile, COMPOSE_PROFILES (environment or env file) decides.
	if len(profiles) == 0 {
		if value, ok := opts.Environment["COMPOSE_PROFILES"]; ok && value != "" {
			profiles = strings.Split(value, ",")
		}
	}
	if err := cli.WithProfiles(profiles)(opts); err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}

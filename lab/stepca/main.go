// Command step-ca for the phoenix lab.
//
// Debian's golang-github-smallstep-certificates-dev ships the step-ca library
// (v0.19.0) but not its cmd/step-ca, so this is a minimal equivalent of the
// upstream main: it runs commands.AppCommand (the CA server) as the top-level
// action and registers the `version` and other subcommands the library carries.
// Built offline in GOPATH mode by build.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/smallstep/certificates/commands"
	"github.com/urfave/cli"
	"go.step.sm/cli-utils/command"
	"go.step.sm/cli-utils/command/version"
	"go.step.sm/cli-utils/step"

	// Enabled CA interfaces: software CA (keys on disk) only.
	_ "github.com/smallstep/certificates/cas/softcas"
)

// Version and BuildTime can be set with -ldflags "-X main.Version=...".
var (
	Version   = "0.19.0-debian-phoenix-lab"
	BuildTime = "N/A"
)

func init() {
	step.Set("Smallstep CA", Version, BuildTime)
	_ = version.Command // registers `step-ca version` via its init()
}

func main() {
	app := cli.NewApp()
	app.Name = "step-ca"
	app.HelpName = "step-ca"
	app.Version = step.Version()
	app.Usage = "an online certificate authority for secure automated certificate management"
	app.UsageText = commands.AppCommand.UsageText
	app.Flags = append(app.Flags, commands.AppCommand.Flags...)
	app.Flags = append(app.Flags, cli.HelpFlag)
	app.Copyright = fmt.Sprintf("(c) 2018-%d Smallstep Labs, Inc.", time.Now().Year())
	app.Writer = os.Stdout
	app.ErrWriter = os.Stderr
	app.Commands = command.Retrieve()

	app.Action = func(_ *cli.Context) error {
		// Run the top-level action (the CA server) as upstream does.
		set := flag.NewFlagSet(app.Name, flag.ContinueOnError)
		_ = set.Parse(os.Args)
		ctx := cli.NewContext(app, set, nil)
		return commands.AppCommand.Run(ctx)
	}

	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

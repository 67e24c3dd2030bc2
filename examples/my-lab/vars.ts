// The vars your roles read: tsc checks every role and inventory against this type.
export interface MyLabVars {
  motd: {
    /** Directory the motd file is written to. */
    dir: string;
    text: string;
  };
}
